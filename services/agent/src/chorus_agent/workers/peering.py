"""The peering loop: fetch the bootstrap list, dial whom the ring says, every interval."""

from __future__ import annotations

import asyncio
import logging

from chorus_agent.domain.peers import PeerBook, choose_dial_targets
from chorus_agent.metrics import AgentMetrics
from meshcommon.logs import RateLimitedLog
from meshcommon.models import BootstrapPeer
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.p2p.runtime import MeshRuntime
from meshcommon.peer.bootstrap_client import BootstrapSource
from meshcommon.peer.refresh import run_refresh_rounds

log = logging.getLogger(__name__)


class Peering:
    def __init__(
        self,
        runtime: MeshRuntime,
        bootstrap: BootstrapSource,
        metrics: AgentMetrics,
        policy: MultiaddrPolicy,
        book: PeerBook,
        *,
        target_peers: int,
        interval_s: float,
    ) -> None:
        self.runtime, self.bootstrap, self.metrics = runtime, bootstrap, metrics
        self.policy, self.book = policy, book
        self.target_peers, self.interval_s = target_peers, interval_s
        self.first_connection = asyncio.Event()
        self._last_peers: tuple[BootstrapPeer, ...] = ()
        # One line per peer per minute: a peer that keeps failing is a metric, not a flood.
        self._failures = RateLimitedLog(log, interval_s=60.0)

    async def run_forever(self) -> None:
        await run_refresh_rounds(self.round, self._next_wait_s, what="peering")

    def _next_wait_s(self) -> float:
        # Fast until the first connection, then at the configured pace (or on news).
        return self.interval_s if self.first_connection.is_set() else min(1.0, self.interval_s)

    async def round(self, wait_s: float = 0.0) -> bool:
        """Fetch the list (waiting up to ``wait_s`` for news), dial whom the ring says;
        returns whether the list brought news."""
        result = await self.bootstrap.fetch(wait_s)
        news = result.peers != self._last_peers
        self._last_peers = result.peers
        for peer in result.peers:
            self.book.add(peer)
        snap = await self.runtime.snapshot()
        connected = set(snap.connected_peers)
        if connected:
            self.first_connection.set()
        targets = choose_dial_targets(
            self.runtime.peer_id, self.book.peers(), connected, self.target_peers
        )
        if not targets:
            return news
        outcomes = await asyncio.gather(
            *(
                self.runtime.connect(
                    p.peer_id, self.policy.filter(p.multiaddrs, p.peer_id).multiaddrs
                )
                for p in targets
            )
        )
        for peer, outcome in zip(targets, outcomes, strict=True):
            for failure in outcome.failures:
                self.metrics.dial_failures.labels(reason=failure.reason).inc()
            if outcome.connected:
                self.metrics.dials.labels(result="ok").inc()
                self.first_connection.set()
            else:
                self.metrics.dials.labels(result="failed").inc()
                causes = (
                    "; ".join(f"{f.multiaddr}: {f.reason} ({f.detail})" for f in outcome.failures)
                    or "no routable multiaddr"
                )
                self._failures.warning(
                    peer.peer_id, "dial %s (%s) failed: %s", peer.name, peer.peer_id, causes
                )
        return news
