"""The bootstrap list, built from one poll round. Pure: no I/O, no clock.

One entry per peer ID: an agent reached through several targets is listed once, with every
routable multiaddr it reported, best first (never loopback unless allowed). Priorities are
ordered by when a peer was first seen healthy, so clients that dial "the first few" get the
same peers poll after poll.

Only healthy statuses are listed, and a status is healthy only with the addresses its
signed peer record proves (``whoosh.domain.peer_claims``): a host that names a peer ID
without its key is never here. One peer ID on several hosts that each prove it is a cloned
key: its entry says ``conflict`` and lists each host as a claimant with its own addresses;
the entry's ``multiaddrs`` interleave the claimants' addresses, so a client that does not
know about claimants still tries every host's best address first. (With
``WHOOSH_UNSIGNED_HEALTH=accept``, unsigned claimants of one peer ID conflict the same way,
and the libp2p handshake tells the impostor.)
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from meshcommon.limits import MAX_CLAIMANTS_PER_PEER, MAX_MULTIADDRS_PER_PEER
from meshcommon.models import BootstrapPeer, Claimant, DiscoverySummary, LeftPeer
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


def _sorted_addrs(group: Sequence[AgentStatus]) -> list[str]:
    """The group's addresses, best first, at most ``MAX_MULTIADDRS_PER_PEER``: targets on
    one host are each within the budget, but not necessarily together."""
    merged: dict[str, AcceptedAddr] = {}
    for status in group:
        for addr in status.accepted:
            merged.setdefault(addr.multiaddr, addr)
    ordered = sorted(merged.values(), key=_policy_order)
    return [a.multiaddr for a in ordered][:MAX_MULTIADDRS_PER_PEER]


def _name(group: Sequence[AgentStatus]) -> str:
    return next((s.health.name for s in group if s.health and s.health.name), "")


def _claimants(group: Sequence[AgentStatus]) -> list[Claimant]:
    """One claimant per host (targets on one address are one agent), at most
    ``MAX_CLAIMANTS_PER_PEER``, each with its own addresses."""
    by_host: dict[str, list[AgentStatus]] = {}
    for status in group:
        by_host.setdefault(status.target.address, []).append(status)
    return [
        Claimant(
            name=_name(host) or host[0].target.name,
            url=host[0].target.url,
            multiaddrs=_sorted_addrs(host),
            signed=all(s.signed for s in host),
            record_seq=_record_seq(host),
        )
        for host in list(by_host.values())[:MAX_CLAIMANTS_PER_PEER]
    ]


def _record_seq(group: Sequence[AgentStatus]) -> int | None:
    seqs = [s.record.seq for s in group if s.record and s.record.signed and s.record.seq]
    return max(seqs) if seqs else None


def _interleaved(claimants: Sequence[Claimant]) -> list[str]:
    """Each claimant's best address, then each one's second best..., capped."""
    rounds = itertools.zip_longest(*(c.multiaddrs for c in claimants))
    flat = [a for round_ in rounds for a in round_ if a is not None]
    return list(dict.fromkeys(flat))[:MAX_MULTIADDRS_PER_PEER]


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
        conflict = len({s.target.address for s in group}) > 1
        claimants = _claimants(group) if conflict else []
        addrs = _interleaved(claimants) if conflict else _sorted_addrs(group)
        peers.append(
            BootstrapPeer(
                peer_id=pid,
                name=_name(group) or group[0].target.name,
                priority=priority,
                multiaddr=addrs[0],
                multiaddrs=addrs,
                conflict=conflict,
                claimants=claimants,
                signed=all(s.signed for s in group),
                record_seq=_record_seq(group),
            )
        )
        if conflict:
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
