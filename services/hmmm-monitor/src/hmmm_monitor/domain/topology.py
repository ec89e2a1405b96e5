"""Mesh topology: who is connected to whom, where each edge comes from, and whether the
agents are split.

Two kinds of knowledge, kept apart and named on every edge (``observed_via``):

- what the monitor's own libp2p layer knows: its connections (``libp2p_connection``) and
  its GossipSub mesh (``gossipsub_mesh``). First-hand, always current.
- what agents claim in their availability broadcasts (``availability_claim``): the peer
  IDs each is connected to. Second-hand, as fresh as the last broadcast; a claim older than
  the heard window is not used.

A partition means that agents are split. Only live agents take part in the verdict: an
expected peer or a peer that behaves as an agent (its availability carries ``peers``),
heard within the window. A peer of another implementation that sends availability
without ``peers`` says nothing about its links; it is reported as ``foreign``, never as a
component of its own. A peer that has gone quiet is ``departed`` (``missing`` if it is
expected: coverage names it), and its old claims no longer draw edges. The monitor is an
observer: if it alone joins two halves, the agents are still split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hmmm_monitor.domain.coverage import iso
from hmmm_monitor.domain.store import AvailabilityReport
from meshcommon.diagnosis import capped
from meshcommon.p2p.types import MeshView

VIA_CONNECTION = "libp2p_connection"
VIA_GOSSIPSUB = "gossipsub_mesh"
VIA_CLAIM = "availability_claim"
EDGE_SOURCES = {
    VIA_CONNECTION: "the monitor's own libp2p connection (first-hand)",
    VIA_GOSSIPSUB: "the peer is in the monitor's GossipSub mesh (first-hand)",
    VIA_CLAIM: "an agent's availability broadcast lists the other peer (claimed, as fresh "
    "as the broadcast)",
}

KIND_MONITOR, KIND_AGENT, KIND_FOREIGN = "monitor", "agent", "foreign"
STATE_LIVE, STATE_MISSING, STATE_DEPARTED = "live", "missing", "departed"


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


@dataclass
class _Edge:
    kinds: set[str]
    via: set[str]
    claimed_by: set[str]


@dataclass(frozen=True)
class Topology:
    """The topology as the diagnosis reads it (typed) and as the API serves it (``view``)."""

    components: tuple[tuple[str, ...], ...]  # live agents, split in groups, largest first
    foreign: tuple[str, ...]  # live peers that are not agents
    view: dict[str, object]  # GET /api/v1/topology


def build_topology(
    *,
    monitor_peer_id: str,
    monitor_view: MeshView | None,
    expected: Mapping[str, str],  # peer_id -> name
    last_heard: Mapping[str, float],  # peer_id -> unix time of last valid message
    availability: Mapping[str, AvailabilityReport],
    now: float,
    heard_window_s: float,
) -> Topology:
    since = now - heard_window_s
    connected: set[str] = set()
    in_mesh: set[str] = set()
    if monitor_view is not None:
        connected = {c.peer_id for c in monitor_view.connections}
        in_mesh = {p for t in monitor_view.topics for p in t.mesh}
    fresh = {pid: r for pid, r in availability.items() if r.received_at >= since}
    heard = {pid for pid, at in last_heard.items() if at >= since}

    edges: dict[tuple[str, str], _Edge] = {}

    def add_edge(a: str, b: str, kind: str, via: str, claimed_by: str | None = None) -> None:
        if a == b:
            return
        edge = edges.setdefault((min(a, b), max(a, b)), _Edge(set(), set(), set()))
        edge.kinds.add(kind)
        edge.via.add(via)
        if claimed_by is not None:
            edge.claimed_by.add(claimed_by)

    for pid in connected:
        add_edge(monitor_peer_id, pid, KIND_MONITOR, VIA_CONNECTION)
    for pid in in_mesh:
        add_edge(monitor_peer_id, pid, KIND_MONITOR, VIA_GOSSIPSUB)
    for pid, report in fresh.items():
        if report.reports_peers:
            for other in report.message.peers:
                add_edge(pid, other, "availability", VIA_CLAIM, claimed_by=pid)

    peers = set(expected) | set(last_heard) | set(availability) | connected | in_mesh
    peers |= {n for pair in edges for n in pair}
    peers.discard(monitor_peer_id)

    def kind_of(pid: str) -> str:
        report = availability.get(pid)
        behaves_as_agent = report is not None and report.reports_peers
        return KIND_AGENT if pid in expected or behaves_as_agent else KIND_FOREIGN

    # A peer a live agent says it is connected to right now is there, heard or not.
    claimed_now = {
        n for pair, e in edges.items() if any(c in heard for c in e.claimed_by) for n in pair
    }

    def state_of(pid: str) -> str:
        if pid in heard or pid in connected or pid in claimed_now:
            return STATE_LIVE
        return STATE_MISSING if pid in expected else STATE_DEPARTED

    kinds = {pid: kind_of(pid) for pid in peers}
    states = {pid: state_of(pid) for pid in peers}
    # Live agents whose neighbours we know (their own fresh claim, or another's) decide the
    # partition verdict; an agent nobody hears or vouches for is missing (coverage says
    # so), not split.
    live_agents = {p for p in peers if kinds[p] == KIND_AGENT and states[p] == STATE_LIVE}
    agent_edges = [pair for pair in edges if pair[0] in live_agents and pair[1] in live_agents]
    known = {p for p in live_agents if p in fresh} | {n for pair in agent_edges for n in pair}
    comps = components(sorted(known), agent_edges)

    nodes: list[dict[str, object]] = [
        {
            "id": monitor_peer_id,
            "name": "hmmm-monitor",
            "kind": KIND_MONITOR,
            "state": STATE_LIVE,
            "connected": True,
        }
    ]
    for pid in sorted(peers):
        report = availability.get(pid)
        heard_at = last_heard.get(pid)
        name = expected.get(pid) or (report.message.name if report else "") or pid[-8:]
        nodes.append(
            {
                "id": pid,
                "name": name,
                "kind": kinds[pid],
                "state": states[pid],
                "expected": pid in expected,
                "connected": pid in connected,
                "in_gossipsub_mesh": pid in in_mesh,
                "heard": pid in heard,
                "last_heard": iso(heard_at),
                "status": report.message.status if report else None,
                "reports_peers": report.reports_peers if report else None,
                "availability_age_s": round(now - report.received_at, 1) if report else None,
            }
        )
    foreign = sorted(p for p in peers if kinds[p] == KIND_FOREIGN and states[p] == STATE_LIVE)
    departed = sorted(p for p in peers if states[p] == STATE_DEPARTED)
    departed_shown, departed_omitted = capped(departed)
    view: dict[str, object] = {
        "nodes": nodes,
        "edges": [
            {
                "source": a,
                "target": b,
                "kinds": sorted(e.kinds),
                "observed_via": sorted(e.via),
                "claimed_by": sorted(e.claimed_by),
            }
            for (a, b), e in sorted(edges.items())
        ],
        "edge_sources": EDGE_SOURCES,
        "components": comps,
        "partitioned": len(comps) > 1,
        "live_agents": len(live_agents),
        "unknown_neighbours": sorted(live_agents - known),
        "foreign": foreign,
        "departed": departed_shown,
        "departed_omitted": departed_omitted,
    }
    return Topology(tuple(tuple(c) for c in comps), tuple(foreign), view)
