"""Pings every connected peer in the background, a bounded number at a time; then
identifies the peers not identified yet (their agent version: foreign peers connected to
the monitor are named by it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from hmmm_monitor.domain.link_quality import EMPTY_LINK, RTT_EWMA_ALPHA, LinkQuality
from hmmm_monitor.metrics import MonitorMetrics
from meshcommon.aio import cancel_and_wait
from meshcommon.peer.pings import ping_each

log = logging.getLogger(__name__)

PING_CONCURRENCY = 8
PING_TIMEOUT_S = 5.0
# The node's own deadline (timeout_s) comes first, with the clearer error, and the node
# counts the failure (three in a row close a dead connection: meshcommon.p2p.liveness);
# this margin (the node may spend 1 s resetting a timed-out ping's stream) only bounds a
# node that stopped answering altogether.
PING_BACKSTOP_S = 2.0


class Pinger(Protocol):
    async def ping(self, peer_id: str, timeout_s: float | None = None) -> float: ...


class Identifier(Protocol):
    async def identify_neighbours(self) -> int: ...

    async def identities(self) -> dict[str, tuple[str, tuple[str, ...]]]: ...


class LinkProber:
    """Pings peers in the background, a bounded number at a time.

    ``start_sweep`` returns at once so a refresh round never waits on a slow peer; a
    sweep still running when the next one is due is left alone (no pile-up), and each
    ping is capped at ``timeout_s``.
    """

    def __init__(
        self,
        pinger: Pinger,
        *,
        concurrency: int = PING_CONCURRENCY,
        timeout_s: float = PING_TIMEOUT_S,
        alpha: float = RTT_EWMA_ALPHA,
        metrics: MonitorMetrics | None = None,
        clock: Callable[[], float] = time.time,
        identifier: Identifier | None = None,
    ) -> None:
        self.pinger = pinger
        self.identifier = identifier
        # Connected peers' identify data: peer ID -> (agent version, protocols).
        self.identities: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.alpha = alpha
        self.metrics = metrics
        self._clock = clock
        self.links: dict[str, LinkQuality] = {}
        self._task: asyncio.Task[None] | None = None
        self.sweeps = 0
        self.skipped_sweeps = 0

    def start_sweep(self, peer_ids: Iterable[str]) -> bool:
        """Start pinging ``peer_ids`` in the background; False if one is still running."""
        if self._task is not None and not self._task.done():
            self.skipped_sweeps += 1
            return False
        self._task = asyncio.create_task(self.sweep(list(peer_ids)), name="hmmm-ping-sweep")
        return True

    async def sweep(self, peer_ids: list[str]) -> None:
        async def ping(peer_id: str) -> float:
            return await self.pinger.ping(peer_id, self.timeout_s)

        outcomes = await ping_each(
            peer_ids,
            ping,
            concurrency=self.concurrency,
            timeout_s=self.timeout_s + PING_BACKSTOP_S,
        )
        answered = {p for p, o in zip(peer_ids, outcomes, strict=True) if self._record(p, o)}
        if self.identifier is not None:
            try:
                await self.identifier.identify_neighbours()
                self.identities = await self.identifier.identities()
            except Exception as exc:  # the node stopping: next sweep
                log.debug("identify failed: %s", exc)
        self.sweeps += 1
        if self.metrics is not None:
            # A peer that is gone or did not answer must not keep reporting its last RTT.
            self.metrics.prune_peer_rtt(answered)

    def _record(self, peer_id: str, outcome: float | Exception) -> bool:
        link = self.links.setdefault(peer_id, LinkQuality())
        if isinstance(outcome, TimeoutError):
            self._failed(peer_id, link, f"timeout: no pong within {self.timeout_s:g} s")
            return False
        if isinstance(outcome, Exception):  # PingError, runtime stopped, ...
            self._failed(peer_id, link, str(outcome) or type(outcome).__name__)
            return False
        link.record_ok(outcome, self._clock(), self.alpha)
        if self.metrics is not None:
            self.metrics.observe_rtt(peer_id, outcome / 1000)
        return True

    def _failed(self, peer_id: str, link: LinkQuality, error: str) -> None:
        link.record_failure(error, self._clock())
        if self.metrics is not None:
            self.metrics.ping_failures.inc()
        if link.consecutive_failures in (1, 10) or link.consecutive_failures % 100 == 0:
            log.warning(
                "ping %s failed (%d in a row): %s", peer_id, link.consecutive_failures, error
            )

    def get(self, peer_id: str) -> LinkQuality:
        return self.links.get(peer_id, EMPTY_LINK)

    def prune(self, keep: set[str]) -> None:
        """Forget peers that are neither connected nor expected (bounded memory)."""
        for pid in [p for p in self.links if p not in keep]:
            del self.links[pid]

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
