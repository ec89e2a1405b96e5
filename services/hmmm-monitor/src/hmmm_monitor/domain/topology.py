"""Mesh topology from what agents say about themselves.

Each agent's availability broadcast lists the peer IDs it is connected to; together with
the monitor's own connections that is the graph. Partition detection looks at agents only:
the monitor is an observer, and if it alone joins two halves the agents are still split
(a network partition is a split between agents).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hmmm_monitor.domain.coverage import iso
from hmmm_monitor.domain.store import AvailabilityReport


def components(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components (union-find), largest first, members sorted."""
    parent = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for n in parent:
        groups.setdefault(find(n), []).append(n)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))


def build_topology(
    *,
    monitor_peer_id: str,
    monitor_connected: Iterable[str],
    expected: Mapping[str, str],  # peer_id -> name
    last_heard: Mapping[str, float],  # peer_id -> unix time of last valid message
    availability: Mapping[str, AvailabilityReport],
    now: float,
    heard_window_s: float,
) -> dict[str, object]:
    connected = set(monitor_connected)
    agents: set[str] = set(expected) | set(last_heard) | set(availability)
    edges: dict[tuple[str, str], set[str]] = {}

    def add_edge(a: str, b: str, kind: str) -> None:
        if a != b:
            edges.setdefault((min(a, b), max(a, b)), set()).add(kind)

    for pid, report in availability.items():
        for other in report.message.peers:
            if other != monitor_peer_id:
                agents.add(other)
            add_edge(pid, other, "availability")
    for pid in connected:
        add_edge(monitor_peer_id, pid, "monitor")
    agents.discard(monitor_peer_id)

    # Only agents whose neighbours we know (they reported, or another agent reported them)
    # take part in partition detection; an agent never heard from is "missing", not split.
    agent_edges = [e for e in edges if monitor_peer_id not in e]
    known = set(availability) | {n for e in agent_edges for n in e}
    comps = components(sorted(known), agent_edges)

    nodes: list[dict[str, object]] = [
        {"id": monitor_peer_id, "name": "hmmm-monitor", "kind": "monitor", "connected": True}
    ]
    for pid in sorted(agents):
        report = availability.get(pid)
        heard_at = last_heard.get(pid)
        name = expected.get(pid) or (report.message.name if report else "") or pid[-8:]
        nodes.append(
            {
                "id": pid,
                "name": name,
                "kind": "agent",
                "expected": pid in expected,
                "connected": pid in connected,
                "heard": bool(heard_at and heard_at >= now - heard_window_s),
                "last_heard": iso(heard_at),
                "status": report.message.status if report else None,
                "availability_age_s": round(now - report.received_at, 1) if report else None,
            }
        )
    return {
        "nodes": nodes,
        "edges": [
            {"source": a, "target": b, "kinds": sorted(kinds)}
            for (a, b), kinds in sorted(edges.items())
        ],
        "components": comps,
        "partitioned": len(comps) > 1,
        "unknown_neighbours": sorted(agents - known),
    }
