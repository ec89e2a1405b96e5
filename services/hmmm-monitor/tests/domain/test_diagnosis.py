"""The monitor's findings from constructed facts: each check names its fault with the
evidence and the fix, and a healthy picture gives nothing at warning or above."""

from __future__ import annotations

from dataclasses import replace

from hmmm_monitor.domain.delivery import DeliveryView
from hmmm_monitor.domain.diagnosis import BootstrapFacts, MonitorFacts, diagnose
from hmmm_monitor.domain.expected_peers import PeerState
from meshcommon.diagnosis import at_least
from meshcommon.models import PnetRefusalRecord
from meshcommon.p2p.types import ConnectionView, MeshView, PeerScore, TopicMesh
from meshcommon.topic_near_miss import near_miss
from meshcommon.topics import ALL_TOPICS, COORDINATION

A1, A2, A3 = (
    "12D3KooWLdRq9rGCYQMB7mpbAQuC2ZB1QxqC9LHXAmJ9FCJdwSKE",
    "12D3KooWCJfubkok7pXb8sdzz5NUmBQG6RxYG5su6cTMiyRVxbD3",
    "12D3KooWDMKk16NJMyzE9iFrZaun8TZn4y5Ajh8TBCFS4CCj5vWG",
)
TYPO_PEER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
NOW = 10_000.0


def _state(pid: str, name: str, **kw: object) -> PeerState:
    s = PeerState(pid, name, 1, [f"/ip4/10.0.0.{name[-1]}/tcp/9000/p2p/{pid}"])
    s.connected = True
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def _mesh(extra_topics: tuple[TopicMesh, ...] = ()) -> MeshView:
    agents = (A1, A2, A3)
    topics = tuple(TopicMesh(t, True, agents, (), agents) for t in ALL_TOPICS)
    return MeshView(
        "12D3KooWMon",
        NOW,
        topics + extra_topics,
        tuple(ConnectionView(p, "outbound", None, NOW - 60) for p in agents),
    )


def _delivery(median_ms: float, samples: int = 10) -> DeliveryView:
    return DeliveryView(samples, 0, 0, 0, 0, 1.0, median_ms, samples)


def healthy() -> MonitorFacts:
    agents = {A1: "agent-01", A2: "agent-02", A3: "agent-03"}
    return MonitorFacts(
        now=NOW,
        uptime_s=600,
        monitor_peer_id="12D3KooWMon",
        heard_window_s=45,
        clock_skew_threshold_s=5,
        expected={p: _state(p, n) for p, n in agents.items()},
        heard=frozenset(agents),
        names=agents,
        mesh=_mesh(),
        components=(tuple(sorted(agents)),),
        foreign=(),
        topic_publishers={COORDINATION: set(agents)},
        delivery={p: _delivery(3.0) for p in agents},
        bootstrap=BootstrapFacts("whoosh", None, 3),
    )


def _by_id(facts: MonitorFacts) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in diagnose(facts):
        out.setdefault(f.id, []).append(f)
    return out


def test_a_healthy_mesh_has_nothing_at_warning_or_above() -> None:
    findings = diagnose(healthy())
    assert [f for f in findings if at_least(f.severity, "warning")] == []
    # The two topics agents never publish on are only mentioned.
    assert {(f.id, f.evidence["topic"]) for f in findings} == {
        ("topic_without_publisher", t) for t in ALL_TOPICS if t != COORDINATION
    }


def test_near_miss_topics_name_the_aspects_that_differ() -> None:
    assert near_miss("chorus/coordination/v1", ALL_TOPICS).differs_by == ("case",)
    assert near_miss("CHORUS/coordination/v2", ALL_TOPICS).differs_by == ("version",)
    miss = near_miss(" chorus_coordination/v3", ALL_TOPICS)
    assert miss.known == COORDINATION
    assert miss.differs_by == ("whitespace", "case", "separator", "version")
    assert near_miss(COORDINATION, ALL_TOPICS) is None
    assert near_miss("weather/v1", ALL_TOPICS) is None


def test_a_subscriber_on_a_misspelt_topic_is_named() -> None:
    typo = TopicMesh("chorus/coordination/v1", False, (), (), (TYPO_PEER,))
    facts = replace(healthy(), mesh=_mesh((typo,)), names={TYPO_PEER: "old-monitor"})
    (f,) = _by_id(facts)["topic_near_miss"]
    assert f.severity == "warning"
    assert f.evidence["topic"] == "chorus/coordination/v1"
    assert f.evidence["known_topic"] == COORDINATION
    assert f.evidence["differs_by"] == ["case"]
    assert f.evidence["peers"] == [{"peer_id": TYPO_PEER, "name": "old-monitor"}]
    assert "'CHORUS/coordination/v1' exactly" in f.fix and "old-monitor" in f.fix


def test_no_publisher_on_coordination_is_critical_once_warmed_up() -> None:
    facts = replace(healthy(), topic_publishers={}, heard=frozenset())
    (f,) = [
        x for x in _by_id(facts)["topic_without_publisher"] if x.evidence["topic"] == COORDINATION
    ]
    assert f.severity == "critical"
    early = replace(facts, uptime_s=10)
    (f,) = [
        x for x in _by_id(early)["topic_without_publisher"] if x.evidence["topic"] == COORDINATION
    ]
    assert f.severity == "info"


def test_agents_not_heard_with_the_split() -> None:
    facts = replace(
        healthy(),
        heard=frozenset({A1, A2}),
        components=(tuple(sorted([A1, A2])), (A3,)),
    )
    found = _by_id(facts)
    (f,) = found["agents_not_heard"]
    assert f.severity == "warning"
    assert (f.evidence["expected"], f.evidence["heard"]) == (3, 2)
    assert [m["name"] for m in f.evidence["missing"]] == ["agent-03"]
    assert len(f.evidence["split"]) == 2
    (p,) = found["mesh_partitioned"]
    assert p.severity == "critical"
    names = healthy().names
    assert [[m["name"] for m in g] for g in p.evidence["groups"]] == [
        [names[pid] for pid in sorted([A1, A2])],
        ["agent-03"],
    ]


def test_no_expected_agent_is_critical_with_the_bootstrap_error() -> None:
    facts = replace(
        healthy(),
        expected={},
        heard=frozenset(),
        bootstrap=BootstrapFacts("none", "unreachable: ConnectError", 0),
    )
    found = _by_id(facts)
    (f,) = found["no_expected_agents"]
    assert f.severity == "critical" and f.evidence["bootstrap_error"].startswith("unreachable")
    (b,) = found["bootstrap_unavailable"]
    assert b.severity == "warning" and b.evidence["source"] == "none"


def test_clock_skew_beyond_the_threshold() -> None:
    facts = replace(healthy(), delivery={A1: _delivery(3.0), A2: _delivery(-180_000.0)})
    (f,) = _by_id(facts)["clock_skew"]
    assert f.severity == "warning"
    assert f.evidence["agents"] == [
        {"peer_id": A2, "name": "agent-02", "offset_s": -180.0, "samples": 10}
    ]
    assert "NTP" in f.fix
    too_few = replace(healthy(), delivery={A2: _delivery(-180_000.0, samples=2)})
    assert "clock_skew" not in _by_id(too_few)
    gone_quiet = replace(facts, heard=frozenset({A1, A3}))
    assert "clock_skew" not in _by_id(gone_quiet)


def test_refused_p2p_port_of_an_agent_whoosh_lists() -> None:
    down = _state(
        A3,
        "agent-03",
        connected=False,
        consecutive_failures=3,
        failing_since=NOW - 45,
        last_error_reason="connection_refused",
        last_error_detail="ConnectionRefusedError: [Errno 111]",
    )
    facts = replace(healthy(), expected={**healthy().expected, A3: down})
    (f,) = _by_id(facts)["p2p_port_unreachable"]
    assert f.severity == "critical"
    (row,) = f.evidence["agents"]
    assert (row["name"], row["reason"], row["failed_dials_in_a_row"]) == (
        "agent-03",
        "connection_refused",
        3,
    )
    assert f.evidence["ports"] == [9000]
    assert "WHOOSH's HTTP health" in f.title and "AGENT_P2P_PORT" in f.fix
    once = replace(
        facts, expected={**healthy().expected, A3: replace(down, consecutive_failures=1)}
    )
    assert "p2p_port_unreachable" not in _by_id(once)


def test_peer_id_mismatch_names_who_answered() -> None:
    vip = "/ip4/10.0.0.250/tcp/9000/p2p/" + A1
    s = _state(A1, "agent-01", connected=False)
    s.failure_reasons["peer_id_mismatch"] = 4
    s.last_failure["peer_id_mismatch"] = {
        "multiaddr": vip,
        "detail": "PeerIDMismatchesPubkey: peer id does not correspond to the received pubkey",
        "answered_by": A2,  # DialFailure.answered_by: a field, never parsed from the text
        "at": NOW - 5,
    }
    facts = replace(healthy(), expected={**healthy().expected, A1: s})
    (f,) = _by_id(facts)["peer_id_mismatch"]
    assert f.severity == "critical"
    (row,) = f.evidence["agents"]
    assert (row["answered_by"], row["mismatches"], row["multiaddr"]) == (A2, 4, vip)
    assert "VIP" in f.fix
    # Long ago: the fault is gone from the report.
    s.last_failure["peer_id_mismatch"]["at"] = NOW - 3600
    assert "peer_id_mismatch" not in _by_id(facts)


def test_foreign_peers_are_information() -> None:
    facts = replace(healthy(), components=((A1,),), foreign=(TYPO_PEER,))
    (f,) = _by_id(facts)["foreign_peers"]
    assert f.severity == "info" and f.evidence["peers"][0]["peer_id"] == TYPO_PEER


def test_the_monitor_without_a_key_is_an_open_mesh() -> None:
    assert "open_mesh" not in _by_id(healthy())
    (f,) = _by_id(replace(healthy(), private_network=False))["open_mesh"]
    assert f.severity == "warning" and f.evidence["hosts"][0]["name"] == "hmmm-monitor"
    assert "MONITOR_PNET_KEY_FILE" in f.fix


def test_peers_refused_by_the_monitors_private_network_are_named_by_address() -> None:
    knock = PnetRefusalRecord(at=NOW - 2, direction="inbound", reason="no_key", remote="10.0.0.9:5")
    mine = PnetRefusalRecord(at=NOW - 1, direction="outbound", reason="closed", remote="10.0.0.3:9")
    (f,) = _by_id(replace(healthy(), pnet_recent=(knock, mine)))["pnet_refused"]
    (row,) = f.evidence["hosts"]
    assert row["refused"] == {"inbound/no_key": 1, "outbound/closed": 1}
    assert row["remotes"] == ["10.0.0.3", "10.0.0.9"]


def test_a_peer_the_monitor_graylists_is_named() -> None:
    mesh = replace(
        _mesh(),
        scores=(PeerScore("12D3KooWJunk", -500.0, {COORDINATION: 25.0}, graylisted=True),),
        rejected={COORDINATION: {"invalid_json": 25}},
    )
    (f,) = _by_id(replace(healthy(), mesh=mesh))["peer_graylisted"]
    assert [p["peer_id"] for p in f.evidence["peers"]] == ["12D3KooWJunk"]
    assert f.evidence["rejected_by_reason"] == {"invalid_json": 25}
    assert "peer_graylisted" not in _by_id(healthy())
