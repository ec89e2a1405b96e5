"""Keeping a connection to every expected peer: dial whoever is due, concurrently but
bounded, and record each outcome with its real cause."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from hmmm_monitor.domain.expected_peers import REASON_NO_DIALABLE, ExpectedPeers, PeerState
from hmmm_monitor.metrics import MonitorMetrics
from meshcommon.logs import RateLimitedLog
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.p2p.types import DialOutcome, NodeSnapshot

log = logging.getLogger(__name__)


class Dialer(Protocol):
    """The part of MeshRuntime the connector uses (tests pass a fake)."""

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome: ...

    async def snapshot(self) -> NodeSnapshot: ...


class PeerConnector:
    def __init__(
        self,
        dialer: Dialer,
        policy: MultiaddrPolicy,
        expected: ExpectedPeers,
        *,
        concurrency: int = 16,
        metrics: MonitorMetrics | None = None,
    ) -> None:
        self.dialer, self.policy, self.expected, self.metrics = dialer, policy, expected, metrics
        self._sem = asyncio.Semaphore(concurrency)
        # One line per peer and reason per minute: a peer that keeps failing is visible in
        # the API and the metrics, not as a wall of identical log lines.
        self._failures = RateLimitedLog(log, interval_s=60.0)

    async def run_round(self) -> None:
        """Sync connection state from the node, then dial every peer that is due."""
        snap = await self.dialer.snapshot()
        self.observe(snap.connected_peers)
        due = self.expected.due()
        if due:
            await asyncio.gather(*(self._dial(s) for s in due))

    def observe(self, connected_peers: Sequence[str]) -> None:
        for s in self.expected.observe(connected_peers):
            log.warning("lost connection to %s (%s)", s.name, s.peer_id)

    async def _dial(self, s: PeerState) -> None:
        verdict = self.policy.filter(s.multiaddrs, s.peer_id)
        self.expected.mark_skipped(s, verdict.rejected)
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
        self.expected.count_failures(s, errors)
        if outcome.connected:
            latency = None if outcome.already_connected else outcome.elapsed_ms
            self.expected.mark_connected(s, outcome.multiaddr, latency)
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
        delay = self.expected.mark_failed(s, reason, detail, errors)
        if self.metrics is not None:
            self.metrics.dial_failures.labels(reason=reason).inc()
        self._failures.warning(
            (s.peer_id, reason),
            "dial %s (%s) failed: %s: %s (attempt %d, next in %.1f s)",
            s.name,
            s.peer_id,
            reason,
            detail,
            s.consecutive_failures,
            delay,
        )
