"""Topology: the mesh graph from availability reports, and partition detection."""

from __future__ import annotations

from hmmm_monitor.domain.store import AvailabilityReport
from hmmm_monitor.domain.topology import build_topology
from meshcommon.models import AvailabilityMessage

# Real (valid) peer IDs: the policy parses the /p2p/ component.
P1, P2, P3 = (
    "12D3KooWLdRq9rGCYQMB7mpbAQuC2ZB1QxqC9LHXAmJ9FCJdwSKE",
    "12D3KooWCJfubkok7pXb8sdzz5NUmBQG6RxYG5su6cTMiyRVxbD3",
    "12D3KooWDMKk16NJMyzE9iFrZaun8TZn4y5Ajh8TBCFS4CCj5vWG",
)


def _avail(pid: str, peers: list[str], at: float = 1000) -> AvailabilityReport:
    msg = AvailabilityMessage(
        node_id=pid,
        available_for_work=True,
        current_tasks=0,
        max_tasks=1,
        last_activity="2025-01-01T00:00:00Z",
        status="ready",
        peers=peers,
    )
    return AvailabilityReport(pid, msg, at)


def test_topology_detects_a_partition_among_agents() -> None:
    mon = "12D3KooWMonitor"
    kwargs = dict(
        monitor_peer_id=mon,
        monitor_connected=[P1, P3],
        expected={P1: "a1", P2: "a2", P3: "a3"},
        last_heard={P1: 1000.0, P3: 1000.0},
        now=1000.0,
        heard_window_s=45,
    )
    # P1-P2 talk to each other, P3 is alone (the monitor bridging them does not count).
    split = build_topology(
        availability={P1: _avail(P1, [P2, mon]), P3: _avail(P3, [mon])}, **kwargs
    )
    assert split["partitioned"] is True
    assert split["components"] == [sorted([P1, P2]), [P3]]
    kinds = {(e["source"], e["target"]): e["kinds"] for e in split["edges"]}
    assert kinds[tuple(sorted([mon, P1]))] == ["availability", "monitor"]
    healed = build_topology(availability={P1: _avail(P1, [P2]), P3: _avail(P3, [P2])}, **kwargs)
    assert healed["partitioned"] is False and len(healed["components"]) == 1
    nodes = {n["id"]: n for n in healed["nodes"]}
    assert nodes[mon]["kind"] == "monitor" and nodes[P2]["heard"] is False
