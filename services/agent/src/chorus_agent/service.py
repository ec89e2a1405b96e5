"""The agent as its routes and its lifespan see it: its parts, and start/stop of its loops."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from chorus_agent.domain.availability import WorkState
from chorus_agent.domain.health import assess_health, build_health
from chorus_agent.domain.peers import PeerBook
from chorus_agent.metrics import AgentMetrics
from chorus_agent.settings import Settings
from chorus_agent.workers.broadcaster import Broadcaster
from chorus_agent.workers.peering import Peering
from chorus_agent.workers.pinger import PeerPinger
from meshcommon.aio import cancel_and_wait
from meshcommon.health import stuck_limit_s
from meshcommon.models import AgentHealth
from meshcommon.multiaddr_policy import FilterResult, MultiaddrPolicy
from meshcommon.p2p.records import PeerRecordSigner
from meshcommon.p2p.runtime import MeshRuntime
from meshcommon.p2p.types import MeshView, NodeSnapshot
from meshcommon.peer.addresses import advertised_multiaddrs
from meshcommon.peer.bootstrap_client import BootstrapSource


@dataclass
class Agent:
    """Everything one agent process holds. ``start``/``stop`` run its background loops."""

    settings: Settings
    runtime: MeshRuntime
    metrics: AgentMetrics
    policy: MultiaddrPolicy
    work: WorkState
    book: PeerBook
    bootstrap: BootstrapSource
    peering: Peering
    broadcaster: Broadcaster
    pinger: PeerPinger
    version: str
    # Signs the advertised addresses for /api/health (None: no record, as older agents).
    records: PeerRecordSigner | None = None
    started: float = field(default_factory=time.monotonic)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def peer_id(self) -> str:
        return self.runtime.peer_id

    def uptime_s(self) -> float:
        return time.monotonic() - self.started

    def advertised(self) -> FilterResult:
        return advertised_multiaddrs(self.settings, self.policy, self.peer_id)

    async def health(self) -> AgentHealth:
        """The health document, with the verdict (ok / degraded / failing) and why."""
        try:
            snap = await self.runtime.snapshot()
            node_running = True
        except Exception:  # the trio thread is gone: say so instead of answering 500
            snap = NodeSnapshot(self.peer_id, self.settings.p2p_port, (), ())
            node_running = False
        else:
            self.metrics.observe_node(snap)
        addrs = self.advertised()
        s = self.settings
        judged = assess_health(
            node_running=node_running,
            connected=len(snap.connected_peers),
            routable=bool(addrs.accepted),
            bootstrap_age_s=self.peering.last_bootstrap.age_s(),
            refresh_s=s.bootstrap_refresh_s,
            peering=self.peering.progress,
            # A round waits for news up to one period, then may retry an unreachable
            # WHOOSH; only a loop silent well beyond that is stuck.
            stuck_after_s=stuck_limit_s(s.bootstrap_refresh_s, s.bootstrap_fetch_budget_s),
            now=time.monotonic(),
        )
        return build_health(
            s,
            snap,
            addrs,
            self.work,
            version=self.version,
            uptime_s=self.uptime_s(),
            known_peers=len(self.book),
            judged=judged,
            peer_record=self.records.record_for(addrs.multiaddrs) if self.records else None,
        )

    async def mesh_view(self) -> MeshView:
        """The libp2p node's own view: GossipSub mesh per topic, connections, scores."""
        return await self.runtime.mesh_view()

    async def observe_node(self) -> None:
        """Bring the node's gauges up to date (before a scrape); raises when the node is
        gone."""
        self.metrics.observe_node(await self.runtime.snapshot())

    async def start(self) -> None:
        await self.runtime.start()
        self._tasks = [
            asyncio.create_task(self.peering.run_forever(), name="peering"),
            asyncio.create_task(self.broadcaster.run_forever(), name="broadcaster"),
            asyncio.create_task(self.pinger.run_forever(), name="pinger"),
        ]

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        try:
            await self.bootstrap.aclose()
        finally:
            await self.runtime.stop()
