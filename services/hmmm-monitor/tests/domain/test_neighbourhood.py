"""The mesh seen from every agent: findings from the agents' neighbours reports (a peer on
a near-miss topic one hop away, foreign peers by agent version, slow and lossy links
between agents), built from constructed facts."""

from __future__ import annotations

from dataclasses import replace

from hmmm_monitor.domain.neighbourhood import LinkThresholds, Neighbourhood, build_neighbourhood
from hmmm_monitor.domain.store import AvailabilityReport
from hmmm_monitor.metrics import MonitorMetrics
from meshcommon.models import AvailabilityMessage
from meshcommon.neighbours import Neighbour

from .test_diagnosis import A1, A2, A3, NOW, TYPO_PEER, _by_id, healthy

GO_PEER = "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"
GO_VERSION = "github.com/libp2p/go-libp2p"
KUBO_VERSION = "kubo/0.25.0/"
JS_VERSION = "js-libp2p/2.9.0 UserAgent=node/20.19.2"


def _hood(reports: dict[str, tuple[Neighbour, ...]]) -> Neighbourhood:
    return Neighbourhood(reports=reports)


def test_a_near_miss_subscriber_one_hop_away_is_named_with_its_agents() -> None:
    # The monitor's own view has no trace of it: only agent-02 is connected to it.
    typo = Neighbour(TYPO_PEER, agent_version=JS_VERSION, topics=("chorus/coordination/v1",))
    facts = replace(healthy(), neighbourhood=_hood({A2: (typo,)}), foreign=(TYPO_PEER,))
    (f,) = _by_id(facts)["topic_near_miss"]
    assert f.severity == "warning"
    assert f.evidence["topic"] == "chorus/coordination/v1" and f.evidence["differs_by"] == ["case"]
    (row,) = f.evidence["subscribers"]
    assert row["peer_id"] == TYPO_PEER and row["agent_version"] == JS_VERSION
    assert row["connected_to"] == [{"peer_id": A2, "name": "agent-02"}]
    assert "neighbours reports" in f.evidence["seen_in"]
    assert "agent-02" in f.fix and "js-libp2p/2.9.0" in f.fix


def test_foreign_peers_are_named_by_agent_version_grouped_by_implementation() -> None:
    # go-libp2p cannot be built here (no Go toolchain): its agent versions are covered here.
    go = Neighbour(GO_PEER, agent_version=GO_VERSION)
    kubo_peer = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
    kubo = Neighbour(kubo_peer, agent_version=KUBO_VERSION)
    js = Neighbour(TYPO_PEER, agent_version=JS_VERSION)
    facts = replace(
        healthy(),
        neighbourhood=_hood({A1: (go, js), A3: (kubo,)}),
        foreign=(GO_PEER, kubo_peer, TYPO_PEER),
    )
    (f,) = _by_id(facts)["foreign_peers"]
    assert f.severity == "info"
    assert f.evidence["by_implementation"] == {
        "go-libp2p": {"count": 2, "agent_versions": [GO_VERSION, KUBO_VERSION]},
        "js-libp2p": {"count": 1, "agent_versions": [JS_VERSION]},
    }
    assert "2 go-libp2p" in f.title and "1 js-libp2p" in f.title
    rows = {r["peer_id"]: r for r in f.evidence["peers"]}
    assert rows[GO_PEER]["name"] == f"{GO_VERSION} ({GO_PEER[-8:]})"
    assert rows[GO_PEER]["implementation"] == "go-libp2p"
    assert rows[GO_PEER]["connected_to"] == [{"peer_id": A1, "name": "agent-01"}]
    assert rows[kubo_peer]["connected_to"] == [{"peer_id": A3, "name": "agent-03"}]
    # The monitor's own identify answer comes first.
    own = replace(facts, identities={TYPO_PEER: ("js-libp2p/3.0.0", ())})
    rows = {r["peer_id"]: r for r in _by_id(own)["foreign_peers"][0].evidence["peers"]}
    assert rows[TYPO_PEER]["agent_version"] == "js-libp2p/3.0.0"


def test_a_slow_link_is_named_with_the_agents_at_its_ends() -> None:
    fast = {"rtt_ms": 0.8, "loss": 0.0, "pings": 8}
    slow = {"rtt_ms": 420.0, "loss": 0.0, "pings": 8}
    reports = {
        A1: (Neighbour(A2, **fast), Neighbour(A3, **slow)),  # type: ignore[arg-type]
        A2: (Neighbour(A1, **fast), Neighbour(A3, **slow)),  # type: ignore[arg-type]
        A3: (Neighbour(A1, **slow), Neighbour(A2, rtt_ms=300.0, loss=0.0, pings=8)),
    }
    facts = replace(healthy(), neighbourhood=_hood(reports))
    (f,) = _by_id(facts)["link_degraded"]
    assert f.severity == "warning"
    ends = [[e["name"] for e in link["ends"]] for link in f.evidence["links"]]
    assert sorted(sorted(e) for e in ends) == [["agent-01", "agent-03"], ["agent-02", "agent-03"]]
    assert f.evidence["common_end"]["name"] == "agent-03"
    assert "agent-03 is at the end of every one" in f.title
    link = next(x for x in f.evidence["links"] if "agent-02" in [e["name"] for e in x["ends"]])
    assert link["rtt_ms"] == 420.0  # the worse end
    assert set(link["as_reported_by"]) == {"agent-02", "agent-03"}
    # Below the threshold: nothing.
    calm = replace(facts, link_limits=LinkThresholds(slow_rtt_ms=1000))
    assert "link_degraded" not in _by_id(calm)


def test_a_lossy_link_needs_enough_pings() -> None:
    lossy = Neighbour(A2, rtt_ms=1.0, loss=0.5, pings=8)
    facts = replace(healthy(), neighbourhood=_hood({A1: (lossy,)}))
    (f,) = _by_id(facts)["link_degraded"]
    assert f.evidence["links"][0]["quality"] == "lossy" and f.evidence["links"][0]["loss"] == 0.5
    early = replace(facts, neighbourhood=_hood({A1: (replace(lossy, pings=2),)}))
    assert "link_degraded" not in _by_id(early)
    # A link to a peer that is not an agent is not judged (it is not the mesh's).
    foreign = replace(facts, neighbourhood=_hood({A1: (replace(lossy, peer_id=GO_PEER),)}))
    assert "link_degraded" not in _by_id(foreign)


def test_only_fresh_reports_count_and_metrics_stay_bounded() -> None:
    msg = AvailabilityMessage(
        node_id=A1,
        available_for_work=True,
        current_tasks=0,
        max_tasks=1,
        last_activity="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        status="available",
    )
    go = Neighbour(GO_PEER, agent_version=GO_VERSION, rtt_ms=2.0, loss=0.0, pings=4)
    reports = {
        A1: AvailabilityReport(A1, msg, NOW - 5, neighbours=(go, Neighbour(A2, rtt_ms=900))),
        A2: AvailabilityReport(A2, msg, NOW - 500, neighbours=(Neighbour(A3),)),
        A3: AvailabilityReport(A3, msg, NOW - 1, neighbours_rejected="over_budget"),
    }
    hood = build_neighbourhood(reports, since=NOW - 45)
    assert set(hood.reports) == {A1} and hood.rejected == {A3: "over_budget"}
    metrics = MonitorMetrics()
    metrics.set_neighbourhood(hood, {A1, A2, A3}, LinkThresholds())
    get = metrics.registry.get_sample_value
    assert get("hmmm_mesh_peers_by_implementation", {"implementation": "go-libp2p"}) == 1
    assert get("hmmm_mesh_peers_by_implementation", {"implementation": "unknown"}) == 1
    assert get("hmmm_agent_links", {"quality": "slow"}) == 1
    labels = {
        tuple(sorted(s.labels))
        for m in metrics.registry.collect()
        for s in m.samples
        if m.name.startswith(("hmmm_mesh_peers", "hmmm_agent_link", "hmmm_neighbour"))
    }
    assert all("peer_id" not in keys for keys in labels)
