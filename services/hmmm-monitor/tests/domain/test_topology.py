"""Topology: the mesh graph, where each edge comes from, and partition detection among
agents only (never a foreign or a departed peer)."""

from __future__ import annotations

from hmmm_monitor.domain.store import AvailabilityReport
from hmmm_monitor.domain.topology import build_topology
from meshcommon.models import AvailabilityMessage
from meshcommon.p2p.types import ConnectionView, MeshView, TopicMesh
from meshcommon.topics import COORDINATION

# Real (valid) peer IDs: the policy parses the /p2p/ component.
P1, P2, P3 = (
    "12D3KooWLdRq9rGCYQMB7mpbAQuC2ZB1QxqC9LHXAmJ9FCJdwSKE",
    "12D3KooWCJfubkok7pXb8sdzz5NUmBQG6RxYG5su6cTMiyRVxbD3",
    "12D3KooWDMKk16NJMyzE9iFrZaun8TZn4y5Ajh8TBCFS4CCj5vWG",
)
JS = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"  # another implementation
MON = "12D3KooWMonitor"
NOW = 1000.0


def _avail(pid: str, peers: list[str] | None, at: float = NOW) -> AvailabilityReport:
    msg = AvailabilityMessage(
        node_id=pid,
        available_for_work=True,
        current_tasks=0,
        max_tasks=1,
        last_activity="2025-01-01T00:00:00Z",
        status="ready",
        peers=peers or [],
    )
    return AvailabilityReport(pid, msg, at, reports_peers=peers is not None)


def _view(connected: list[str], mesh: list[str] = ()) -> MeshView:
    return MeshView(
        peer_id=MON,
        taken_at=NOW,
        topics=(TopicMesh(COORDINATION, True, tuple(mesh), (), tuple(connected)),),
        connections=tuple(ConnectionView(p, "outbound", None, NOW - 5) for p in connected),
    )


def _topology(**overrides: object) -> dict:
    kwargs: dict = dict(
        monitor_peer_id=MON,
        monitor_view=_view([P1, P3]),
        expected={P1: "a1", P2: "a2", P3: "a3"},
        last_heard={P1: NOW, P3: NOW},
        availability={},
        now=NOW,
        heard_window_s=45,
    )
    kwargs.update(overrides)
    return build_topology(**kwargs).view


def test_a_partition_among_agents_is_detected_and_heals() -> None:
    # P1-P2 talk to each other, P3 is alone (the monitor bridging them does not count).
    split = _topology(availability={P1: _avail(P1, [P2, MON]), P3: _avail(P3, [MON])})
    assert split["partitioned"] is True
    assert split["components"] == [sorted([P1, P2]), [P3]]
    edges = {(e["source"], e["target"]): e for e in split["edges"]}
    mon_p1 = edges[tuple(sorted([MON, P1]))]
    assert mon_p1["kinds"] == ["availability", "monitor"]
    # First-hand (the monitor's own connection) and claimed (P1's broadcast), both named.
    assert mon_p1["observed_via"] == ["availability_claim", "libp2p_connection"]
    assert mon_p1["claimed_by"] == [P1]
    assert edges[tuple(sorted([P1, P2]))]["observed_via"] == ["availability_claim"]

    healed = _topology(availability={P1: _avail(P1, [P2]), P3: _avail(P3, [P2])})
    assert healed["partitioned"] is False and len(healed["components"]) == 1
    nodes = {n["id"]: n for n in healed["nodes"]}
    assert nodes[MON]["kind"] == "monitor" and nodes[P2]["heard"] is False
    assert nodes[P2]["state"] == "live"  # vouched for by P1's and P3's fresh claims


def test_a_foreign_peer_without_peers_is_not_a_partition_and_departs() -> None:
    """A peer of another implementation joined through P1 and sends availability without
    a ``peers`` field: it is foreign, the agents are one component."""
    agents = {P1: _avail(P1, [P3, JS]), P3: _avail(P3, [P1])}
    with_js = _topology(
        availability={**agents, JS: _avail(JS, None)}, last_heard={P1: NOW, P3: NOW, JS: NOW}
    )
    assert with_js["partitioned"] is False
    assert with_js["components"] == [sorted([P1, P3])]
    assert with_js["foreign"] == [JS]
    node = {n["id"]: n for n in with_js["nodes"]}[JS]
    assert (node["kind"], node["state"], node["reports_peers"]) == ("foreign", "live", False)

    # It left a minute ago: its last report is stale, P1 no longer lists it.
    later = NOW + 60
    gone = _topology(
        availability={
            P1: _avail(P1, [P3], at=later),
            P3: _avail(P3, [P1], at=later),
            JS: _avail(JS, None, at=NOW),
        },
        last_heard={P1: later, P3: later, JS: NOW},
        now=later,
    )
    assert gone["partitioned"] is False and gone["components"] == [sorted([P1, P3])]
    assert gone["foreign"] == [] and gone["departed"] == [JS]
    assert {n["id"]: n for n in gone["nodes"]}[JS]["state"] == "departed"


def test_stale_claims_draw_no_edges_and_an_unexpected_agent_counts() -> None:
    """P2 is not expected but behaves as an agent (it reports its peers): it takes part.
    P3's claim is older than the window: it draws nothing."""
    topo = _topology(
        expected={P1: "a1", P3: "a3"},
        availability={
            P1: _avail(P1, [P2]),
            P2: _avail(P2, [P1]),
            P3: _avail(P3, [P1], at=NOW - 100),
        },
        last_heard={P1: NOW, P2: NOW, P3: NOW - 100},
        monitor_view=_view([P1]),
    )
    assert topo["components"] == [sorted([P1, P2])]
    assert topo["partitioned"] is False
    pairs = {(e["source"], e["target"]) for e in topo["edges"]}
    assert tuple(sorted([P1, P3])) not in pairs
    nodes = {n["id"]: n for n in topo["nodes"]}
    assert nodes[P2]["kind"] == "agent" and nodes[P2]["expected"] is False
    assert nodes[P3]["state"] == "missing"


def test_the_gossipsub_mesh_is_a_first_hand_edge() -> None:
    topo = _topology(monitor_view=_view([P1], mesh=[P1]))
    (edge,) = topo["edges"]
    assert edge["observed_via"] == ["gossipsub_mesh", "libp2p_connection"]
    assert set(topo["edge_sources"]) == {
        "gossipsub_mesh",
        "libp2p_connection",
        "availability_claim",
    }
