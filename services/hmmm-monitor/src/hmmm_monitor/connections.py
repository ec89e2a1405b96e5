"""Keeping a connection to every expected peer, and remembering how each dial went.

The field report's monitor dialled once and printed "Connected to 3/3": no retry, no reason
when a dial failed (a Swarm VIP answering with the wrong replica looked like a generic
error). Here every expected peer has a ``PeerState`` with the real failure cause, dial
latency and reconnect count; peers that keep failing back off exponentially; dials run
concurrently but bounded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hmmm_monitor.metrics import MonitorMetrics
from meshcommon.models import BootstrapPeer
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.p2p.node import DialOutcome, NodeSnapshot

log = logging.getLogger(__name__)

REASON_NO_DIALABLE = "no_dialable_multiaddr"
REASON_DISCONNECTED = "disconnected"
REASON_NOT_DIALLED = "not_dialled_yet"


class Dialer(Protocol):
    """The part of MeshRuntime the connector uses (tests pass a fake)."""

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome: ...

    async def snapshot(self) -> NodeSnapshot: ...


@dataclass
class PeerState:
    peer_id: str
    name: str
    priority: int
    multiaddrs: list[str]
    connected: bool = False
    connected_multiaddr: str | None = None
    connected_since: float | None = None
    dial_attempts: int = 0
    dial_failures: int = 0
    consecutive_failures: int = 0
    dial_latency_ms: float | None = None
    reconnects: int = 0
    ever_connected: bool = False
    last_error_reason: str | None = None
    last_error_detail: str | None = None
    last_error_at: float | None = None
    last_dial_errors: list[dict[str, str]] = field(default_factory=list)
    skipped_multiaddrs: list[dict[str, str]] = field(default_factory=list)
    next_dial_at: float = 0.0
    in_bootstrap: bool = True
    left_bootstrap_at: float | None = None  # when it dropped out of the bootstrap list

    @property
    def reason(self) -> str:
        return self.last_error_reason or REASON_NOT_DIALLED

    def to_dict(self) -> dict[str, object]:
        return {
            "peer_id": self.peer_id,
            "name": self.name,
            "priority": self.priority,
            "multiaddrs": self.multiaddrs,
            "connected": self.connected,
            "connected_multiaddr": self.connected_multiaddr,
            "connected_since": self.connected_since,
            "dial_attempts": self.dial_attempts,
            "dial_failures": self.dial_failures,
            "dial_latency_ms": self.dial_latency_ms,
            "reconnects": self.reconnects,
            "last_error": None
            if self.last_error_reason is None
            else {
                "reason": self.last_error_reason,
                "detail": self.last_error_detail,
                "at": self.last_error_at,
                "attempts": self.last_dial_errors,
            },
            "skipped_multiaddrs": self.skipped_multiaddrs,
            "next_dial_at": None if self.connected else self.next_dial_at,
            "in_bootstrap": self.in_bootstrap,
            "left_bootstrap_at": self.left_bootstrap_at,
        }


class PeerConnector:
    def __init__(
        self,
        dialer: Dialer,
        policy: MultiaddrPolicy,
        *,
        concurrency: int = 16,
        backoff_initial_s: float = 2.0,
        backoff_max_s: float = 60.0,
        metrics: MonitorMetrics | None = None,
        clock: Callable[[], float] = time.time,
        forget_after_s: float = 0.0,
    ) -> None:
        self.dialer = dialer
        self.forget_after_s = forget_after_s
        self.policy = policy
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.metrics = metrics
        self._clock = clock
        self._sem = asyncio.Semaphore(concurrency)
        self.peers: dict[str, PeerState] = {}
        self.connected_peers: tuple[str, ...] = ()  # every peer the node is connected to

    def set_expected(self, peers: Sequence[BootstrapPeer]) -> None:
        """Adopt a new bootstrap list: keep history for known peers; a peer that left the
        list stays expected for ``forget_after_s``, then is dropped.

        WHOOSH lists only agents that answered its last health poll, so an agent that
        crashed or is restarting leaves the list within seconds. Forgetting it at once
        would make coverage shrink to "5/5" instead of naming the lost agent missing, and
        reset its reconnect history when it comes back.
        """
        now = self._clock()
        fresh: dict[str, PeerState] = {}
        for p in peers:
            addrs = list(dict.fromkeys([p.multiaddr, *p.multiaddrs]))
            state = self.peers.get(p.peer_id)
            if state is None:
                state = PeerState(p.peer_id, p.name, p.priority, addrs)
            elif state.multiaddrs != addrs or state.left_bootstrap_at is not None:
                # New addresses, or back in WHOOSH's list (it answered a health poll again),
                # are a new chance: don't make them wait out the old backoff.
                state.multiaddrs, state.next_dial_at, state.consecutive_failures = addrs, 0.0, 0
            state.name, state.priority = p.name, p.priority
            state.in_bootstrap, state.left_bootstrap_at = True, None
            fresh[p.peer_id] = state
        for pid, state in self.peers.items():
            if pid in fresh:
                continue
            if state.left_bootstrap_at is None:
                state.in_bootstrap, state.left_bootstrap_at = False, now
            if now - state.left_bootstrap_at < self.forget_after_s:
                fresh[pid] = state  # still expected (and redialled with backoff)
            else:
                log.info("forgetting %s (%s): not in the bootstrap list", state.name, pid)
        self.peers = fresh

    async def run_round(self) -> None:
        """Sync connection state from the node, then dial every peer that is due."""
        snap = await self.dialer.snapshot()
        self.observe(snap.connected_peers)
        now = self._clock()
        due = [s for s in self.peers.values() if not s.connected and s.next_dial_at <= now]
        if due:
            await asyncio.gather(*(self._dial(s) for s in due))

    def observe(self, connected_peers: Sequence[str]) -> None:
        self.connected_peers = tuple(connected_peers)
        connected = set(connected_peers)
        now = self._clock()
        for s in self.peers.values():
            if s.peer_id in connected and not s.connected:
                self._mark_connected(s, now, s.connected_multiaddr)  # e.g. the agent dialled us
            elif s.connected and s.peer_id not in connected:
                s.connected, s.connected_since = False, None
                s.last_error_reason, s.last_error_at = REASON_DISCONNECTED, now
                s.last_error_detail = "connection closed (agent restarted or network issue)"
                s.next_dial_at = 0.0  # redial at once: restarted agents come back fast
                log.warning("lost connection to %s (%s)", s.name, s.peer_id)

    def _mark_connected(self, s: PeerState, now: float, multiaddr: str | None) -> None:
        if s.ever_connected:
            s.reconnects += 1
        s.connected, s.ever_connected, s.connected_since = True, True, now
        s.connected_multiaddr = multiaddr
        s.consecutive_failures = 0

    async def _dial(self, s: PeerState) -> None:
        verdict = self.policy.filter(s.multiaddrs, s.peer_id)
        s.skipped_multiaddrs = [
            {"multiaddr": r.multiaddr, "reason": r.reason, "detail": r.detail}
            for r in verdict.rejected
        ]
        if not verdict.accepted:
            reasons = ", ".join(f"{r.multiaddr}: {r.reason}" for r in verdict.rejected)
            self._failed(s, REASON_NO_DIALABLE, reasons or "no multiaddrs", [])
            return
        async with self._sem:
            s.dial_attempts += 1
            try:
                outcome = await self.dialer.connect(s.peer_id, verdict.multiaddrs)
            except Exception as exc:  # the runtime stopped, etc.: keep the loop alive
                self._failed(s, "dial_error", f"{type(exc).__name__}: {exc}", [])
                return
        errors = [
            {"multiaddr": f.multiaddr, "reason": f.reason, "detail": f.detail}
            for f in outcome.failures
        ]
        if outcome.connected:
            now = self._clock()
            if not outcome.already_connected:
                s.dial_latency_ms = round(outcome.elapsed_ms, 1)
            self._mark_connected(s, now, outcome.multiaddr)
            s.last_dial_errors = errors  # earlier multiaddrs may have failed
            log.info(
                "connected to %s (%s) via %s in %.0f ms",
                s.name,
                s.peer_id,
                outcome.multiaddr,
                outcome.elapsed_ms,
            )
            return
        last = outcome.failures[-1] if outcome.failures else None
        self._failed(s, last.reason if last else "dial_error", last.detail if last else "", errors)

    def _failed(self, s: PeerState, reason: str, detail: str, errors: list[dict[str, str]]) -> None:
        now = self._clock()
        s.dial_failures += 1
        s.consecutive_failures += 1
        s.last_error_reason, s.last_error_detail, s.last_error_at = reason, detail, now
        s.last_dial_errors = errors
        delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (s.consecutive_failures - 1))
        # Jitter so a fleet of monitors (or many peers) don't retry in lockstep.
        s.next_dial_at = now + delay * random.uniform(0.8, 1.2)
        if self.metrics is not None:
            self.metrics.dial_failures.labels(reason=reason).inc()
        log.warning(
            "dial %s (%s) failed: %s: %s (attempt %d, next in %.1f s)",
            s.name,
            s.peer_id,
            reason,
            detail,
            s.consecutive_failures,
            delay,
        )
