"""Availability broadcast on ``CHORUS/coordination/v1``: every ``interval_s``, and soon
after a peer newly subscribes, so that a newcomer (a restarted monitor, a new agent)
hears of this agent in seconds rather than at the next period."""

from __future__ import annotations

import asyncio
import logging
import random
import time
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
# An announcement for a new subscriber waits a heartbeat or so (the mesh grafts it) plus
# jitter, so that every agent a restarted monitor connects to does not answer at once.
ANNOUNCE_DELAY_S = (1.0, 2.5)
# ...and comes at most this often, however many peers subscribe.
ANNOUNCE_MIN_GAP_S = 5.0


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
        self._newcomer = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_sent = float("-inf")

    def peer_subscribed(self, topic: str, peer_id: str) -> None:
        """From the libp2p thread: a peer newly subscribed to ``topic``."""
        loop = self._loop
        if topic == topics.COORDINATION and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._newcomer.set)

    async def broadcast_once(self, reason: str = "period") -> None:
        snap = await self.runtime.snapshot()
        # What this agent sees of its neighbours, for the monitor (meshcommon.neighbours).
        neighbours = await self.runtime.neighbours(topics.ALL_TOPICS)
        msg = availability_message(
            self.runtime.peer_id,
            self.work,
            name=self.name,
            version=self.version,
            peers=list(snap.connected_peers),
            multiaddrs=self.multiaddrs(),
            neighbours=neighbours,
        )
        await self.runtime.publish(topics.COORDINATION, encode(msg.model_dump(mode="json")))
        self._last_sent = time.monotonic()
        self.metrics.broadcasts.labels(result="ok").inc()
        self.metrics.announcements.labels(reason=reason).inc()

    async def run_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Announce as soon as we have a peer, so a fresh mesh is visible within seconds,
        # then at the configured pace and whenever a newcomer subscribes.
        await self.first_connection.wait()
        await asyncio.sleep(min(FIRST_BROADCAST_DELAY_S, self.interval_s))
        reason = "first_connection"
        while True:
            try:
                await self.broadcast_once(reason)
            except Exception as exc:
                self.metrics.broadcasts.labels(result="error").inc()
                log.warning("availability broadcast failed: %s: %s", type(exc).__name__, exc)
            reason = await self._next_reason()

    async def _next_reason(self) -> str:
        """Sleep until the period is over ("period") or a newcomer subscribed and the
        announcement is due ("newcomer")."""
        due = self._last_sent + self.interval_s
        self._newcomer.clear()
        try:
            await asyncio.wait_for(self._newcomer.wait(), max(0.0, due - time.monotonic()))
        except TimeoutError:
            return "period"
        earliest = self._last_sent + ANNOUNCE_MIN_GAP_S
        delay = max(random.uniform(*ANNOUNCE_DELAY_S), earliest - time.monotonic())
        if time.monotonic() + delay >= due:  # the period comes first anyway
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            return "period"
        await asyncio.sleep(delay)
        return "newcomer"
