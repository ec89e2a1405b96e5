"""WHOOSH as its routes and its lifespan see it: its parts, and start/stop of its loops."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from meshcommon.health import HealthVerdict, stuck_limit_s
from whoosh.adapters.discovery.base import Watcher, watch
from whoosh.domain.health import assess_health
from whoosh.metrics import WhooshMetrics
from whoosh.settings import Settings
from whoosh.workers.directory import AgentDirectory
from whoosh.workers.label_sync import LabelSyncService

log = logging.getLogger(__name__)


@dataclass
class Whoosh:
    """Everything one WHOOSH process holds. ``start``/``stop`` run its background loops."""

    settings: Settings
    version: str
    metrics: WhooshMetrics
    directory: AgentDirectory
    label_sync: LabelSyncService
    # The agents' HTTP client when WHOOSH made it (closed on stop); None when the caller
    # passed one in and keeps it.
    owned_http_client: httpx.AsyncClient | None = None

    _watcher: Watcher | None = None

    def health(self) -> HealthVerdict:
        snap, s = self.directory.snapshot, self.settings
        return assess_health(
            discovery_error=snap.discovery_error,
            rounds_done=snap.updated_at is not None,
            discovered=snap.summary.discovered,
            healthy=snap.summary.healthy,
            progress=self.directory.progress,
            # A round may take the slowest agent's every retry on top of the period.
            stuck_after_s=stuck_limit_s(s.poll_interval_s, s.poll_budget_s),
            now=self.directory.now(),
        )

    async def start(self) -> None:
        log.info(
            "whoosh %s starting: discovery=%s poll every %.1fs",
            self.version,
            self.directory.source.name,
            self.directory.poll_interval_s,
        )
        await self.directory.start()
        if self.settings.swarm_events:
            loop = asyncio.get_running_loop()
            self._watcher = watch(
                self.directory.source,
                lambda why: loop.call_soon_threadsafe(self.directory.converge, why),
            )
        await self.label_sync.start()

    async def stop(self) -> None:
        try:
            if self._watcher is not None:
                await asyncio.to_thread(self._watcher.stop)
                self._watcher = None
            await self.label_sync.stop()
            await self.directory.stop()
        finally:
            if self.owned_http_client is not None:
                await self.owned_http_client.aclose()
