"""WHOOSH as its routes and its lifespan see it: its parts, and start/stop of its loops."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx

from meshcommon.diagnosis import Diagnosis, Unavailable
from meshcommon.health import HealthVerdict, stuck_limit_s
from whoosh.adapters.discovery.base import Watcher, watch
from whoosh.adapters.discovery.dns import Resolver, getaddrinfo_resolver
from whoosh.adapters.swarm_inspect import SwarmInspectApi, read_swarm_facts, resolve_names
from whoosh.domain.diagnosis import CHECKS, SwarmFacts, WhooshFacts
from whoosh.domain.health import assess_health
from whoosh.metrics import WhooshMetrics
from whoosh.settings import Settings
from whoosh.workers.directory import AgentDirectory
from whoosh.workers.label_sync_service import LabelSyncService

log = logging.getLogger(__name__)

# The Swarm API must answer the diagnosis within this (a wedged engine is a skipped check).
SWARM_READ_TIMEOUT_S = 10.0


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
    # The Swarm API for the diagnosis (None: no Docker socket; ``no_swarm_reason`` says so).
    swarm_inspector: SwarmInspectApi | None = None
    no_swarm_reason: str = "no Docker Engine API configured"
    resolver: Resolver = getaddrinfo_resolver

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

    async def diagnosis(self) -> Diagnosis:
        """What discovery, health polling and the Swarm API show is wrong (no agent is
        contacted: the last round's results are used)."""
        settings, snap = self.settings, self.directory.snapshot
        swarm = await self._swarm_facts()
        dns_name = None
        if snap.source == "dns":
            dns_name = settings.dns_lookup_name
        names = await resolve_names(
            [s.target for s in snap.statuses],
            dns_name,
            [s.target.address for s in snap.statuses],
            self.resolver,
        )
        facts = WhooshFacts(
            source=snap.source,
            discovery_error=snap.discovery_error,
            expected=snap.summary.expected,
            statuses=snap.statuses,
            duplicates=snap.duplicates,
            overlay_cidrs=tuple(settings.overlay_cidrs),
            agent_port=settings.agent_port,
            swarm=swarm,
            names=names,
            now=time.time(),
        )
        return CHECKS.diagnosis("whoosh", self.version, facts)

    async def _swarm_facts(self) -> SwarmFacts | Unavailable:
        inspector = self.swarm_inspector
        if inspector is None:
            return Unavailable(self.no_swarm_reason)
        settings = self.settings
        try:
            async with asyncio.timeout(SWARM_READ_TIMEOUT_S):
                facts = await asyncio.to_thread(
                    read_swarm_facts, inspector, settings.agent_service, settings.swarm_network
                )
        except Exception as exc:  # not a manager, socket gone, engine wedged: a skipped check
            return Unavailable(f"Swarm API: {type(exc).__name__}: {str(exc)[:200]}")
        return facts
