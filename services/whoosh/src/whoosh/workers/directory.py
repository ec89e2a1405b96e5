"""AgentDirectory: the cached discovery state and the loop that keeps it fresh.

Reads never wait for the network: every round builds a new immutable ``Snapshot`` and swaps
one reference, so readers (any thread) see either the old or the new state, never half.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime

from meshcommon.aio import cancel_and_wait
from meshcommon.models import BootstrapResponse, DiscoverySummary, utcnow
from whoosh.adapters.discovery.base import DiscoverySource
from whoosh.adapters.health_poller import HealthPoller
from whoosh.domain.agent_status import AgentStatus
from whoosh.domain.bootstrap_list import DuplicatePeerId, build_bootstrap
from whoosh.domain.targets import AgentTarget, DiscoveryResult
from whoosh.metrics import WhooshMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    source: str
    updated_at: datetime | None = None  # None until the first round finished
    bootstrap: BootstrapResponse = field(
        default_factory=lambda: BootstrapResponse(bootstrap_peers=[], count=0)
    )
    statuses: tuple[AgentStatus, ...] = ()
    duplicates: tuple[DuplicatePeerId, ...] = ()
    discovery_error: str | None = None
    round_seconds: float | None = None

    @property
    def summary(self) -> DiscoverySummary:
        return self.bootstrap.summary


class AgentDirectory:
    """Every agent discovery found, its health, and the bootstrap list built from them."""

    def __init__(
        self,
        source: DiscoverySource,
        poller: HealthPoller,
        metrics: WhooshMetrics,
        poll_interval_s: float,
    ) -> None:
        self.source = source
        self.poller = poller
        self.metrics = metrics
        self.poll_interval_s = poll_interval_s
        self._snapshot = Snapshot(source=source.name)
        self._first_seen: dict[str, datetime] = {}
        self._last_targets: tuple[AgentTarget, ...] = ()
        self._last_error: str | None = None
        self._last_duplicates: set[DuplicatePeerId] = set()
        self._inflight: asyncio.Task[Snapshot] | None = None
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run(), name="whoosh-discovery")

    async def stop(self) -> None:
        await cancel_and_wait(self._loop_task, self._inflight)
        self._loop_task = None

    async def _run(self) -> None:
        while True:  # first round immediately, then every poll_interval_s
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad round kill discovery
                log.exception("discovery round failed; keeping the previous state")
            await asyncio.sleep(self.poll_interval_s)

    # -- rounds -------------------------------------------------------------------
    async def refresh(self) -> Snapshot:
        """Run one round now. Single-flight: concurrent callers share the running round
        (a burst of refresh requests must not fan out N times to every agent)."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._round())
        # shield: a caller that goes away (client disconnect) must not cancel the others'.
        return await asyncio.shield(self._inflight)

    async def _round(self) -> Snapshot:
        started = time.perf_counter()
        try:
            result = await self.source.discover()
        except Exception as exc:  # sources should not raise; if one does, it is an error
            result = DiscoveryResult((), None, self.source.name, f"{type(exc).__name__}: {exc}")
        self._note_discovery_error(result)

        targets = result.targets
        if not targets and result.error and self._last_targets:
            # A failed lookup (DNS hiccup, Docker API restart) must not empty the bootstrap
            # list: keep polling the agents we knew about until discovery works again.
            targets = self._last_targets
        elif targets:
            self._last_targets = targets

        statuses = await self.poller.poll(targets)
        now = utcnow()
        view = build_bootstrap(statuses, result.expected, self._first_seen, now)
        self._first_seen = view.first_seen
        elapsed = time.perf_counter() - started
        snap = Snapshot(
            source=result.source,
            updated_at=now,
            bootstrap=BootstrapResponse(
                bootstrap_peers=list(view.peers),
                count=len(view.peers),
                updated_at=now,
                summary=view.summary,
            ),
            statuses=tuple(statuses),
            duplicates=view.duplicates,
            discovery_error=result.error,
            round_seconds=round(elapsed, 3),
        )
        if self._snapshot.summary != snap.summary:  # one line when the picture changes
            sm = snap.summary
            log.info(
                "discovery (%s): expected=%s discovered=%d healthy=%d unreachable=%d missing=%d",
                snap.source,
                sm.expected,
                sm.discovered,
                sm.healthy,
                sm.unreachable,
                sm.missing,
            )
        self._snapshot = snap
        self._update_metrics(snap, elapsed)
        return snap

    def _note_discovery_error(self, result: DiscoveryResult) -> None:
        if result.error:
            self.metrics.discovery_errors.labels(source=result.source).inc()
        if result.error != self._last_error:  # one log line per change
            if result.error:
                log.warning("discovery (%s) error: %s", result.source, result.error)
            elif self._last_error:
                log.info("discovery (%s) recovered", result.source)
            self._last_error = result.error

    def _update_metrics(self, snap: Snapshot, elapsed: float) -> None:
        s = snap.summary
        m = self.metrics
        m.agents_expected.set(math.nan if s.expected is None else s.expected)
        m.agents_discovered.set(s.discovered)
        m.agents_healthy.set(s.healthy)
        m.agents_unreachable.set(s.unreachable)
        m.duplicate_peer_ids.set(len(snap.duplicates))
        m.poll_round_seconds.observe(elapsed)
        for dup in set(snap.duplicates) - self._last_duplicates:  # log new ones only
            log.warning("duplicate peer id %s claimed by %s", dup.peer_id, ", ".join(dup.targets))
        self._last_duplicates = set(snap.duplicates)
