"""build_bootstrap: dedup by peer id, merged multiaddrs, stable priorities, summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from whoosh_testkit import PEER_A, PEER_B, PEER_C

from meshcommon.limits import MAX_MULTIADDRS_PER_PEER
from meshcommon.models import AgentHealth
from meshcommon.multiaddr_policy import MultiaddrPolicy
from whoosh.domain.agent_status import AgentStatus
from whoosh.domain.bootstrap_list import build_bootstrap
from whoosh.domain.targets import AgentTarget

POLICY = MultiaddrPolicy.from_settings(["10.0.13.0/24"])
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def healthy(url_ip: str, peer_id: str, *addr_ips: str, name: str = "") -> AgentStatus:
    addrs = [f"/ip4/{ip}/tcp/9000/p2p/{peer_id}" for ip in addr_ips]
    verdict = POLICY.filter(addrs, peer_id)
    return AgentStatus(
        AgentTarget(f"http://{url_ip}:8080", f"task-{url_ip}", url_ip),
        "healthy",
        health=AgentHealth(peer_id=peer_id, name=name, multiaddrs=addrs),
        accepted=verdict.accepted,
        attempts=1,
    )


def down(url_ip: str) -> AgentStatus:
    return AgentStatus(
        AgentTarget(f"http://{url_ip}:8080", f"task-{url_ip}", url_ip), "unreachable", "timeout"
    )


def test_one_entry_per_peer_with_merged_multiaddrs_and_duplicate_reported() -> None:
    statuses = [
        healthy("10.0.13.2", PEER_A, "192.168.0.2", "10.0.13.2", name="alpha"),
        healthy("10.0.13.3", PEER_A, "10.0.13.3"),  # same identity, other host
        healthy("10.0.13.4", PEER_B, "10.0.13.4"),
    ]
    view = build_bootstrap(statuses, 3, {}, T0)
    assert [p.peer_id for p in view.peers] == [PEER_A, PEER_B]
    a = view.peers[0]
    assert a.name == "alpha"
    # overlay addresses first (policy order), then the other routable one
    assert a.multiaddrs == [
        f"/ip4/10.0.13.2/tcp/9000/p2p/{PEER_A}",
        f"/ip4/10.0.13.3/tcp/9000/p2p/{PEER_A}",
        f"/ip4/192.168.0.2/tcp/9000/p2p/{PEER_A}",
    ]
    assert a.multiaddr == a.multiaddrs[0]
    assert [d.as_dict() for d in view.duplicates] == [
        {"peer_id": PEER_A, "targets": ["http://10.0.13.2:8080", "http://10.0.13.3:8080"]}
    ]
    assert view.summary.model_dump() == {
        "expected": 3,
        "discovered": 3,
        "healthy": 2,
        "unreachable": 0,
        "missing": 1,
    }


def test_same_host_twice_is_not_a_duplicate() -> None:
    a1 = healthy("10.0.13.2", PEER_A, "10.0.13.2")
    a2 = AgentStatus(
        AgentTarget("http://10.0.13.2:9090", "alt", "10.0.13.2"),
        "healthy",
        health=a1.health,
        accepted=a1.accepted,
    )
    view = build_bootstrap([a1, a2], None, {}, T0)
    assert len(view.peers) == 1
    assert view.duplicates == ()
    assert view.summary.missing == 0


def test_one_entry_keeps_the_address_budget_across_targets_on_one_host() -> None:
    """Two ports of one host, each within the per-agent budget: the entry still is."""
    ports = [
        AgentStatus(
            AgentTarget(f"http://10.0.13.2:{8080 + n}", f"t{n}", "10.0.13.2"),
            "healthy",
            health=AgentHealth(peer_id=PEER_A),
            accepted=POLICY.filter(
                [f"/ip4/10.0.13.{i}/tcp/{9000 + n}/p2p/{PEER_A}" for i in range(2, 30)], PEER_A
            ).accepted,
        )
        for n in range(2)
    ]
    (entry,) = build_bootstrap(ports, None, {}, T0).peers
    assert len(entry.multiaddrs) == MAX_MULTIADDRS_PER_PEER
    assert entry.multiaddr == entry.multiaddrs[0] and not entry.conflict


def test_name_falls_back_to_target_and_unreachable_excluded() -> None:
    view = build_bootstrap(
        [healthy("10.0.13.2", PEER_A, "10.0.13.2"), down("10.0.13.9")], 2, {}, T0
    )
    assert [(p.name, p.priority) for p in view.peers] == [("task-10.0.13.2", 1)]
    assert (view.summary.healthy, view.summary.unreachable, view.summary.missing) == (1, 1, 1)


def test_priorities_stable_across_rounds() -> None:
    round1 = [healthy("10.0.13.5", PEER_C, "10.0.13.5"), healthy("10.0.13.6", PEER_B, "10.0.13.6")]
    v1 = build_bootstrap(round1, None, {}, T0)
    # same first-seen time: peer id breaks the tie
    assert [(p.peer_id, p.priority) for p in v1.peers] == [(PEER_B, 1), (PEER_C, 2)]

    # A peer that sorts first by id but arrives later goes to the back; order of input and
    # the later clock do not reshuffle the existing ones.
    round2 = [healthy("10.0.13.1", PEER_A, "10.0.13.1"), *reversed(round1)]
    v2 = build_bootstrap(round2, None, v1.first_seen, T0 + timedelta(seconds=15))
    assert [(p.peer_id, p.priority) for p in v2.peers] == [(PEER_B, 1), (PEER_C, 2), (PEER_A, 3)]
    v3 = build_bootstrap(round2, None, v2.first_seen, T0 + timedelta(seconds=30))
    assert [p.peer_id for p in v3.peers] == [p.peer_id for p in v2.peers]

    # PEER_B goes away: it is forgotten, the others move up in the same relative order.
    v4 = build_bootstrap([round2[0], round2[2]], None, v3.first_seen, T0 + timedelta(seconds=45))
    assert [(p.peer_id, p.priority) for p in v4.peers] == [(PEER_C, 1), (PEER_A, 2)]
    assert set(v4.first_seen) == {PEER_A, PEER_C}


def test_one_peer_id_on_two_hosts_is_a_conflict_with_each_claimant_apart() -> None:
    real = healthy("10.0.13.2", PEER_A, "10.0.13.2", "192.168.0.2", name="alpha")
    impostor = healthy("10.0.13.7", PEER_A, "10.0.13.7", "192.168.0.7", name="mallory")
    view = build_bootstrap([real, impostor, healthy("10.0.13.4", PEER_B, "10.0.13.4")], 3, {}, T0)
    a, b = view.peers
    assert a.conflict and not b.conflict and b.claimants == []
    assert [(c.name, c.url, c.multiaddrs) for c in a.claimants] == [
        (
            "alpha",
            "http://10.0.13.2:8080",
            [f"/ip4/10.0.13.2/tcp/9000/p2p/{PEER_A}", f"/ip4/192.168.0.2/tcp/9000/p2p/{PEER_A}"],
        ),
        (
            "mallory",
            "http://10.0.13.7:8080",
            [f"/ip4/10.0.13.7/tcp/9000/p2p/{PEER_A}", f"/ip4/192.168.0.7/tcp/9000/p2p/{PEER_A}"],
        ),
    ]
    # Every claimant's best address first: a client that ignores claimants still tries
    # both hosts at once, and the handshake sorts them out.
    assert [m.split("/")[2] for m in a.multiaddrs] == [
        "10.0.13.2",
        "10.0.13.7",
        "192.168.0.2",
        "192.168.0.7",
    ]
    assert view.duplicates[0].peer_id == PEER_A
