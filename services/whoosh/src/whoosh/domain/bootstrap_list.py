"""The bootstrap list, built from one poll round. Pure: no I/O, no clock.

One entry per peer ID: an agent reached through several targets is listed once, with every
routable multiaddr it reported, best first (never loopback unless allowed). Priorities are
ordered by when a peer was first seen healthy, so clients that dial "the first few" get the
same peers poll after poll.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from meshcommon.models import BootstrapPeer, DiscoverySummary, LeftPeer
from meshcommon.multiaddr_policy import AcceptedAddr
from whoosh.domain.agent_status import AgentStatus


@dataclass(frozen=True)
class DuplicatePeerId:
    """One peer ID answered by agents on different hosts: a cloned identity key."""

    peer_id: str
    targets: tuple[str, ...]  # target URLs

    def as_dict(self) -> dict[str, object]:
        return {"peer_id": self.peer_id, "targets": list(self.targets)}


@dataclass(frozen=True)
class BootstrapView:
    peers: tuple[BootstrapPeer, ...]
    summary: DiscoverySummary
    duplicates: tuple[DuplicatePeerId, ...]
    # peer_id -> first time seen healthy; feed it back into the next build.
    first_seen: dict[str, datetime]


def _policy_order(addr: AcceptedAddr) -> tuple[int, int, bytes]:
    # Same order as MultiaddrPolicy.filter: overlay first, then IPv4 before IPv6.
    return (addr.rank, addr.ip.version, addr.ip.packed)


def build_bootstrap(
    statuses: Sequence[AgentStatus],
    expected: int | None,
    first_seen: Mapping[str, datetime],
    now: datetime,
) -> BootstrapView:
    by_peer: dict[str, list[AgentStatus]] = {}
    for status in sorted(statuses, key=lambda s: s.target.url):
        if status.state == "healthy" and status.peer_id:
            by_peer.setdefault(status.peer_id, []).append(status)

    # Peers not healthy this round are forgotten: the map stays bounded (agents get a new
    # peer ID per restart), and a flapping peer re-enters at the back of the list.
    seen = {pid: first_seen.get(pid, now) for pid in by_peer}
    order = sorted(by_peer, key=lambda pid: (seen[pid], pid))

    peers: list[BootstrapPeer] = []
    duplicates: list[DuplicatePeerId] = []
    for priority, pid in enumerate(order, start=1):
        group = by_peer[pid]
        merged: dict[str, AcceptedAddr] = {}
        for status in group:
            for addr in status.accepted:
                merged.setdefault(addr.multiaddr, addr)
        addrs = [a.multiaddr for a in sorted(merged.values(), key=_policy_order)]
        name = next((s.health.name for s in group if s.health and s.health.name), "")
        peers.append(
            BootstrapPeer(
                peer_id=pid,
                name=name or group[0].target.name,
                priority=priority,
                multiaddr=addrs[0],
                multiaddrs=addrs,
            )
        )
        if len({s.target.address for s in group}) > 1:
            duplicates.append(DuplicatePeerId(pid, tuple(s.target.url for s in group)))

    discovered = len({s.target.url for s in statuses})
    unreachable = sum(1 for s in statuses if s.state != "healthy")
    summary = DiscoverySummary(
        expected=expected,
        discovered=discovered,
        healthy=len(peers),
        unreachable=unreachable,
        missing=max(0, expected - len(peers)) if expected is not None else 0,
    )
    return BootstrapView(tuple(peers), summary, tuple(duplicates), seen)


def bootstrap_etag(peers: Sequence[BootstrapPeer], left: Sequence[LeftPeer] = ()) -> str:
    """A strong HTTP entity tag of a bootstrap list: the same entries, the same tag
    (across WHOOSH restarts too, so a client's cached tag stays valid). Peers that left
    count too: a client waiting for news learns at once whom to stop expecting."""
    entries: list[object] = [p.model_dump(mode="json") for p in peers]
    if left:  # without any, the tag of the list alone (as before ``left`` existed)
        entries.append(sorted((p.peer_id, p.reason) for p in left))
    doc = json.dumps(entries, sort_keys=True)
    return '"' + hashlib.sha256(doc.encode()).hexdigest()[:20] + '"'
