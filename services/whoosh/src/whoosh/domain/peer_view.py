"""One agent's view of the bootstrap list: what it needs, not the whole list. Pure.

An agent dials its ring successor (the next peer ID in sorted order, as
``chorus_agent.domain.peers.choose_dial_targets`` computes it) and a few random others, so
it needs its ring neighbours and ``k`` random peers, not the N entries of the whole list
(322 KiB at N = 1,000, sent to every agent on every change of the list).

The random peers come from consistent hashing: every listed peer sits on a hash ring at
``h(peer_id)``; the asking peer owns ``k`` points ``h(peer_id#i)`` and takes, for each, the
first peer at or after it (skipping ones already chosen). The choice is deterministic (the
same agent gets the same peers poll after poll and across WHOOSH restarts) and changes only
when the membership near the agent's points changes: a peer joining or leaving elsewhere
changes about ``k + 2`` of N agents' views, so a change of the list wakes a handful of
long-polling agents instead of all of them. Each view costs O(k log N).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from meshcommon.models import BootstrapPeer

MAX_VIEW_K = 32  # random peers one request may ask for
DEFAULT_VIEW_K = 8
# A libp2p peer ID as text, base58btc (Qm… 46 characters, 12D3KooW… 52): used only as the
# seed and ring position of a view, so its form is all that is checked.
PEER_ID_PATTERN = r"^[1-9A-HJ-NP-Za-km-z]{32,128}$"


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class PeerView:
    """The peers chosen for one agent, best first, and the entity tag of the view."""

    peer_id: str
    k: int
    peer_ids: tuple[str, ...]  # successor, predecessor, then the random peers
    successor: str | None
    predecessor: str | None
    etag: str


class PeerIndex:
    """The listed peers indexed for views: built once per snapshot (O(N log N))."""

    def __init__(self, peers: Sequence[BootstrapPeer]) -> None:
        self.peers = {p.peer_id: p for p in peers}
        self.ring: list[str] = sorted(self.peers)
        by_point = sorted((_point(pid), pid) for pid in self.peers)
        self._points = [pt for pt, _ in by_point]
        self._at_point = [pid for _, pid in by_point]
        self._digests: dict[str, str] = {}  # peer_id -> digest of its entry (lazily)

    def __len__(self) -> int:
        return len(self.ring)

    def neighbours(self, peer_id: str) -> tuple[str | None, str | None]:
        """(successor, predecessor) of ``peer_id`` on the ring of the other peers' IDs,
        whether or not ``peer_id`` is listed itself."""
        ring = self.ring
        n = len(ring)
        if n == 0 or (n == 1 and ring[0] == peer_id):
            return None, None
        after = bisect.bisect_right(ring, peer_id)
        successor = ring[after % n]
        before = bisect.bisect_left(ring, peer_id) - 1
        predecessor = ring[before % n]
        return successor, predecessor

    def choose(self, peer_id: str, k: int) -> tuple[tuple[str, ...], str | None, str | None]:
        """The view's peer IDs (successor, predecessor, k random), successor, predecessor."""
        successor, predecessor = self.neighbours(peer_id)
        chosen: list[str] = []
        for pid in (successor, predecessor):
            if pid is not None and pid not in chosen:
                chosen.append(pid)
        others = len(self.ring) - (1 if peer_id in self.peers else 0)
        want = min(len(chosen) + k, others)
        taken = {peer_id, *chosen}
        n = len(self._points)
        i = 0
        while len(chosen) < want:
            start = bisect.bisect_left(self._points, _point(f"{peer_id}#{i}"))
            i += 1
            for step in range(n):  # at most len(taken) steps: the rest is taken
                pid = self._at_point[(start + step) % n]
                if pid not in taken:
                    taken.add(pid)
                    chosen.append(pid)
                    break
        return tuple(chosen), successor, predecessor

    def digest(self, peer_id: str) -> str:
        """What a peer's entry says, priority aside (a view numbers its own entries)."""
        known = self._digests.get(peer_id)
        if known is None:
            entry = self.peers[peer_id].model_dump(mode="json", exclude={"priority"})
            known = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()[:16]
            self._digests[peer_id] = known
        return known

    def view(self, peer_id: str, k: int) -> PeerView:
        """``peer_id``'s view with ``k`` random peers. Its entity tag depends only on the
        peers chosen, in order, and on their entries: a change elsewhere in the list
        leaves it as it is."""
        ids, successor, predecessor = self.choose(peer_id, k)
        doc = "|".join(f"{pid}={self.digest(pid)}" for pid in ids)
        tag = hashlib.sha256(f"{peer_id}/{k}/{doc}".encode()).hexdigest()[:20]
        # Weak: the body also carries the list's summary and time, which the tag leaves out.
        return PeerView(peer_id, k, ids, successor, predecessor, f'W/"{tag}"')

    def entries(self, view: PeerView) -> list[BootstrapPeer]:
        """The view's entries, numbered in the view's order (1: the ring successor)."""
        return [
            self.peers[pid].model_copy(update={"priority": rank})
            for rank, pid in enumerate(view.peer_ids, start=1)
        ]
