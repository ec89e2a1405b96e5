"""Per-peer dial backoff, shared by the agent's peering and the monitor's connector.

A peer that keeps failing is retried later and later (exponential, capped), with jitter so
that many diallers, or many peers of one dialler, never retry in lockstep. A success, or
news about the peer (new addresses), is a fresh start. Pure: the clock and the jitter are
injected.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


def default_jitter() -> float:
    return random.uniform(0.8, 1.2)


@dataclass(frozen=True)
class BackoffPolicy:
    initial_s: float = 2.0
    max_s: float = 60.0
    jitter: Callable[[], float] = field(default=default_jitter, compare=False)

    def delay_s(self, consecutive_failures: int) -> float:
        """The wait after the n-th failure in a row (n >= 1): initial, 2x, 4x... capped."""
        exponent = max(0, consecutive_failures - 1)
        # 2**exponent overflows a float past ~1000 failures; the cap is reached long before.
        if exponent >= 64:
            return self.max_s
        return float(min(self.max_s, self.initial_s * 2**exponent))

    def jittered_s(self, consecutive_failures: int) -> float:
        return self.delay_s(consecutive_failures) * self.jitter()


@dataclass
class _Entry:
    failures: int = 0
    next_at: float = 0.0


class PeerBackoff:
    """Failure counts and next-attempt times of the peers that failed, by peer ID.

    Only failing peers have an entry, and at most ``max_peers`` of them (the one that
    failed longest ago goes first): peer IDs come from the network, so this cannot grow
    without bound. A peer without an entry may be dialled now.
    """

    def __init__(
        self,
        policy: BackoffPolicy,
        *,
        max_peers: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy, self.max_peers = policy, max_peers
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def ready(self, peer_id: str) -> bool:
        entry = self._entries.get(peer_id)
        return entry is None or entry.next_at <= self._clock()

    def failures(self, peer_id: str) -> int:
        entry = self._entries.get(peer_id)
        return entry.failures if entry else 0

    def failed(self, peer_id: str) -> float:
        """Record a failed dial; returns the wait before the next one, in seconds."""
        entry = self._entries.pop(peer_id, None) or _Entry()
        entry.failures += 1
        delay = self.policy.jittered_s(entry.failures)
        entry.next_at = self._clock() + delay
        self._entries[peer_id] = entry  # most recent failure last
        while len(self._entries) > self.max_peers:
            self._entries.popitem(last=False)
        return delay

    def succeeded(self, peer_id: str) -> None:
        self._entries.pop(peer_id, None)

    def retain(self, peer_ids: Iterable[str]) -> None:
        """Forget every peer not in ``peer_ids`` (peers no longer known)."""
        keep = set(peer_ids)
        for pid in [p for p in self._entries if p not in keep]:
            del self._entries[pid]

    def __len__(self) -> int:
        return len(self._entries)
