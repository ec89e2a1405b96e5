"""The agent as its routes and its lifespan see it: its parts, and start/stop of its loops."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from chorus_agent.domain.availability import WorkState
from chorus_agent.domain.peers import PeerBook
from chorus_agent.metrics import AgentMetrics
from chorus_agent.settings import Settings
from chorus_agent.workers.broadcaster import Broadcaster
from chorus_agent.workers.peering import Peering
from chorus_agent.workers.pinger import PeerPinger
from meshcommon.aio import cancel_and_wait
from meshcommon.multiaddr_policy import FilterResult, MultiaddrPolicy
from meshcommon.p2p.runtime import MeshRuntime
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
    started: float = field(default_factory=time.monotonic)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def peer_id(self) -> str:
        return self.runtime.peer_id

    def uptime_s(self) -> float:
        return time.monotonic() - self.started

    def advertised(self) -> FilterResult:
        return advertised_multiaddrs(self.settings, self.policy, self.peer_id)

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
