"""The mesh seen from every agent: the agents' neighbours reports (``meshcommon.neighbours``,
carried by their availability broadcasts) put together.

Second-hand, like the topology's claims: as fresh as each agent's last broadcast, and a
report older than the heard window is not used. Each agent speaks only for its own links
(its broadcast is signed by its key). A link between two agents is reported by both ends;
its quality is the worse of the two (RTT median and ping loss each end measured itself).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from hmmm_monitor.domain.store import AvailabilityReport
from meshcommon.neighbours import Neighbour, implementation_of

QUALITY_OK, QUALITY_SLOW, QUALITY_LOSSY, QUALITY_UNMEASURED = "ok", "slow", "lossy", "unmeasured"
LINK_QUALITIES = (QUALITY_OK, QUALITY_SLOW, QUALITY_LOSSY, QUALITY_UNMEASURED)
# Pings a link needs before its loss is judged (one failed ping of two is not a verdict).
MIN_PINGS_FOR_LOSS = 3


@dataclass(frozen=True)
class LinkThresholds:
    slow_rtt_ms: float = 250.0
    lossy_ratio: float = 0.25


@dataclass(frozen=True)
class Link:
    """One link between two peers, as its ends report it (one or both)."""

    ends: tuple[str, str]  # sorted
    by_end: Mapping[str, Neighbour]  # reporter -> what it says of the other end

    @property
    def rtt_ms(self) -> float | None:
        rtts = [n.rtt_ms for n in self.by_end.values() if n.rtt_ms is not None]
        return max(rtts) if rtts else None

    @property
    def loss(self) -> float | None:
        losses = [n.loss for n in self.by_end.values() if n.loss is not None and n.pings]
        return max(losses) if losses else None

    @property
    def pings(self) -> int:
        return max((n.pings for n in self.by_end.values()), default=0)

    def quality(self, limits: LinkThresholds) -> str:
        loss, rtt = self.loss, self.rtt_ms
        if loss is not None and self.pings >= MIN_PINGS_FOR_LOSS and loss >= limits.lossy_ratio:
            return QUALITY_LOSSY
        if rtt is not None and rtt >= limits.slow_rtt_ms:
            return QUALITY_SLOW
        return QUALITY_UNMEASURED if rtt is None and loss is None else QUALITY_OK


@dataclass(frozen=True)
class SeenPeer:
    """A peer as the agents connected to it see it."""

    peer_id: str
    seen_by: tuple[str, ...]  # reporting agents, sorted
    agent_version: str  # the one most reporters agree on ("" if none knows it)
    topics: tuple[str, ...]  # every topic any reporter saw it subscribe to

    @property
    def implementation(self) -> str:
        return implementation_of(self.agent_version)


@dataclass(frozen=True)
class Neighbourhood:
    reports: Mapping[str, tuple[Neighbour, ...]] = field(default_factory=dict)
    rejected: Mapping[str, str] = field(default_factory=dict)  # reporter -> reason

    def peers(self) -> dict[str, SeenPeer]:
        """Every peer some agent reports, with who reports it."""
        seen: dict[str, list[tuple[str, Neighbour]]] = {}
        for reporter, neighbours in self.reports.items():
            for n in neighbours:
                seen.setdefault(n.peer_id, []).append((reporter, n))
        out = {}
        for peer, views in seen.items():
            versions = Counter(n.agent_version for _, n in views if n.agent_version)
            topics = sorted({t for _, n in views for t in n.topics})
            out[peer] = SeenPeer(
                peer_id=peer,
                seen_by=tuple(sorted(r for r, _ in views)),
                agent_version=versions.most_common(1)[0][0] if versions else "",
                topics=tuple(topics),
            )
        return out

    def links(self, among: set[str] | None = None) -> list[Link]:
        """Links whose two ends are both in ``among`` (default: any reported link)."""
        pairs: dict[tuple[str, str], dict[str, Neighbour]] = {}
        for reporter, neighbours in self.reports.items():
            for n in neighbours:
                if among is not None and (reporter not in among or n.peer_id not in among):
                    continue
                a, b = sorted((reporter, n.peer_id))
                pairs.setdefault((a, b), {})[reporter] = n
        return [Link(ends, by_end) for ends, by_end in sorted(pairs.items())]


def build_neighbourhood(
    availability: Mapping[str, AvailabilityReport], *, since: float
) -> Neighbourhood:
    """The fresh reports (received at or after ``since``), and the agents whose last
    report was refused, with the reason."""
    fresh = {pid: r for pid, r in availability.items() if r.received_at >= since}
    return Neighbourhood(
        reports={pid: r.neighbours for pid, r in fresh.items() if r.neighbours},
        rejected={pid: r.neighbours_rejected for pid, r in fresh.items() if r.neighbours_rejected},
    )
