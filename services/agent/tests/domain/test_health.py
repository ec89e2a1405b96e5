from chorus_agent.domain.availability import WorkState, availability_message
from chorus_agent.domain.health import build_health
from chorus_agent.settings import Settings
from meshcommon import topics
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.p2p.types import NodeSnapshot
from meshcommon.peer.addresses import advertised_multiaddrs

PID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def test_health_advertises_only_routable_addresses_overlay_first() -> None:
    settings = Settings(name="agent-7", capabilities=["code", "review"], p2p_port=9000)
    policy = MultiaddrPolicy.from_settings(["10.0.13.0/24"])
    addrs = advertised_multiaddrs(
        settings, policy, PID, ips=["127.0.0.1", "172.18.0.4", "10.0.13.227", "fe80::1", "::1"]
    )
    snap = NodeSnapshot(PID, 9000, connected_peers=("a", "b"), topics=topics.ALL_TOPICS)
    health = build_health(
        settings, snap, addrs, WorkState(max_tasks=3), version="1.2.3", uptime_s=12.5, known_peers=5
    )
    assert health.multiaddrs == [
        f"/ip4/10.0.13.227/tcp/9000/p2p/{PID}",
        f"/ip4/172.18.0.4/tcp/9000/p2p/{PID}",
    ]
    assert all(m.endswith(f"/p2p/{PID}") for m in health.multiaddrs)
    assert {r["reason"] for r in health.rejected_multiaddrs} == {"loopback", "link_local"}
    assert health.connected_peers == 2
    assert health.gossipsub_topics == sorted(topics.ALL_TOPICS)
    assert (health.name, health.version, health.status) == ("agent-7", "1.2.3", "ready")
    assert health.capabilities == ["code", "review"]
    assert health.uptime_seconds == 12.5
    assert health.known_peers == 5


def test_isolated_agent_and_agent_without_routable_address_say_so() -> None:
    settings = Settings(name="x")
    policy = MultiaddrPolicy()
    snap = NodeSnapshot(PID, 9000, connected_peers=(), topics=topics.ALL_TOPICS)
    routable = advertised_multiaddrs(settings, policy, PID, ips=["10.1.1.1"])
    loop_only = advertised_multiaddrs(settings, policy, PID, ips=["127.0.0.1"])
    work = WorkState(max_tasks=1)
    assert build_health(
        settings, snap, routable, work, version="v", uptime_s=0, known_peers=0
    ).status == ("isolated")
    assert build_health(
        settings, snap, loop_only, work, version="v", uptime_s=0, known_peers=0
    ).status == ("no_routable_address")


def test_announce_addrs_override_interfaces() -> None:
    settings = Settings(announce_addrs=["/ip4/203.0.113.9/tcp/4001"])
    addrs = advertised_multiaddrs(settings, MultiaddrPolicy(), PID, ips=["10.0.0.1"])
    assert addrs.multiaddrs == [f"/ip4/203.0.113.9/tcp/4001/p2p/{PID}"]


def test_availability_message_carries_the_seed_fields() -> None:
    work = WorkState(max_tasks=2, current_tasks=2)
    msg = availability_message(PID, work, name="agent-1", version="0.1.0", peers=["p"])
    data = msg.model_dump(mode="json")
    for key in (
        "node_id",
        "available_for_work",
        "current_tasks",
        "max_tasks",
        "last_activity",
        "status",
        "timestamp",
    ):
        assert key in data
    assert data["type"] == "availability"
    assert data["available_for_work"] is False and data["status"] == "busy"


def test_health_verdicts_name_the_problem_and_only_a_stuck_agent_is_failing() -> None:
    from chorus_agent.domain.health import assess_health
    from meshcommon.health import LoopProgress

    progress = LoopProgress(started_at=0.0)
    progress.completed(now=100.0)

    def judge(**kw: object):
        args = dict(
            node_running=True,
            connected=3,
            routable=True,
            bootstrap_age_s=2.0,
            refresh_s=10.0,
            peering=progress,
            stuck_after_s=53.0,
            now=110.0,
        )
        args.update(kw)
        return assess_health(**args)  # type: ignore[arg-type]

    assert judge().status == "ok"
    isolated = judge(connected=0, bootstrap_age_s=264.0)
    assert isolated.status == "degraded" and isolated.http_status == 200
    assert isolated.reasons == ["isolated", "bootstrap_stale"]
    assert judge(routable=False).reasons == ["no_routable_address"]
    stuck = judge(now=160.0)
    assert (stuck.status, stuck.http_status, stuck.reasons) == ("failing", 503, ["peering_stuck"])
    down = judge(node_running=False, connected=0)
    assert down.status == "failing" and down.reasons == ["node_down"]
