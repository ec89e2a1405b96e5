"""Periodic availability broadcast on ``CHORUS/coordination/v1``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from chorus_agent.domain.availability import WorkState, availability_message
from chorus_agent.metrics import AgentMetrics
from meshcommon import topics
from meshcommon.gossip import encode
from meshcommon.p2p.runtime import MeshRuntime

log = logging.getLogger(__name__)

# After the first connection, GossipSub needs a heartbeat or so to exchange
# subscriptions; publishing earlier reaches nobody.
FIRST_BROADCAST_DELAY_S = 1.5


class Broadcaster:
    def __init__(
        self,
        runtime: MeshRuntime,
        work: WorkState,
        metrics: AgentMetrics,
        *,
        name: str,
        version: str,
        interval_s: float,
        first_connection: asyncio.Event,
        multiaddrs: Callable[[], list[str]] = list,
    ) -> None:
        self.runtime, self.work, self.metrics = runtime, work, metrics
        self.name, self.version, self.interval_s = name, version, interval_s
        self.first_connection = first_connection
        self.multiaddrs = multiaddrs

    async def broadcast_once(self) -> None:
        snap = await self.runtime.snapshot()
        msg = availability_message(
            self.runtime.peer_id,
            self.work,
            name=self.name,
            version=self.version,
            peers=list(snap.connected_peers),
            multiaddrs=self.multiaddrs(),
        )
        await self.runtime.publish(topics.COORDINATION, encode(msg.model_dump(mode="json")))
        self.metrics.broadcasts.labels(result="ok").inc()

    async def run_forever(self) -> None:
        # Announce as soon as we have a peer, so a fresh mesh is visible within seconds,
        # then at the configured pace.
        await self.first_connection.wait()
        await asyncio.sleep(min(FIRST_BROADCAST_DELAY_S, self.interval_s))
        while True:
            try:
                await self.broadcast_once()
            except Exception as exc:
                self.metrics.broadcasts.labels(result="error").inc()
                log.warning("availability broadcast failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.interval_s)
