"""The peering loop: fetch the bootstrap list, dial whom the ring says, every interval.

Dials run in the background (``DialPool``): a round starts the ones that are due and
waits for them only briefly, so a peer whose addresses hang costs its own dial the node's
per-peer deadline, never the other dials or the next round. A peer that keeps failing
backs off (capped, jittered) and is skipped until its time comes.
"""

from __future__ import annotations

import asyncio
import logging

from chorus_agent.domain.peers import SOURCE_DHT, PeerBook, choose_dial_targets
from chorus_agent.metrics import AgentMetrics
from meshcommon.health import LoopProgress
from meshcommon.limits import MAX_KNOWN_PEERS
from meshcommon.logs import RateLimitedLog
from meshcommon.models import BootstrapPeer
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.p2p.runtime import MeshRuntime
from meshcommon.peer.backoff import BackoffPolicy, PeerBackoff
from meshcommon.peer.bootstrap_client import NOT_FETCHED, BootstrapResult, BootstrapSource
from meshcommon.peer.dialing import ROUND_SETTLE_S, DialPool
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
        dial_concurrency: int = 8,
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self.runtime, self.bootstrap, self.metrics = runtime, bootstrap, metrics
        self.policy, self.book = policy, book
        self.target_peers, self.interval_s = target_peers, interval_s
        self.first_connection = asyncio.Event()
        self.progress = LoopProgress()
        self.last_bootstrap: BootstrapResult = NOT_FETCHED
        self.backoff = PeerBackoff(backoff or BackoffPolicy(), max_peers=MAX_KNOWN_PEERS)
        self.dials = DialPool(dial_concurrency)
        self._last_peers: tuple[BootstrapPeer, ...] = ()
        # One line per peer per minute: a peer that keeps failing is a metric, not a flood.
        self._failures = RateLimitedLog(log, interval_s=60.0)

    async def run_forever(self) -> None:
        try:
            await run_refresh_rounds(
                self.round, self._next_wait_s, what="peering", progress=self.progress
            )
        finally:
            await self.dials.aclose()

    def _next_wait_s(self) -> float:
        # Fast until the first connection, then at the configured pace (or on news).
        return self.interval_s if self.first_connection.is_set() else min(1.0, self.interval_s)

    async def round(self, wait_s: float = 0.0) -> bool:
        """Fetch the list (waiting up to ``wait_s`` for news), start the dials the ring
        says; returns whether the list brought news."""
        result = await self.bootstrap.fetch(wait_s)
        self.last_bootstrap = result
        news = result.peers != self._last_peers
        self._last_peers = result.peers
        for peer in result.peers:
            self.book.add(peer)
        # The DHT's finds, as gossiped addresses are: checked by the address policy, dialled
        # within target_peers like any other known peer.
        for peer_id, addrs in await self.runtime.dht_peers():
            self.book.learn(peer_id, addrs, source=SOURCE_DHT)
        snap = await self.runtime.snapshot()
        connected = set(snap.connected_peers)
        if connected:
            self.first_connection.set()
        for peer_id in connected:  # e.g. it dialled us: its backoff is over
            self.backoff.succeeded(peer_id)
        known = self.book.peers()
        self.backoff.retain(p.peer_id for p in known)
        targets = choose_dial_targets(
            self.runtime.peer_id,
            known,
            connected,
            self.target_peers,
            pending={p.peer_id for p in known if self.dials.in_flight(p.peer_id)},
            ready=self.backoff.ready,
            successor=result.view.successor if result.view else None,
        )
        for peer in targets:
            self.dials.start(peer.peer_id, lambda peer=peer: self._dial(peer))
        await self.dials.settle(ROUND_SETTLE_S)
        return news

    async def _dial(self, peer: BootstrapPeer) -> None:
        addrs = self.policy.filter(peer.multiaddrs, peer.peer_id).multiaddrs
        outcome = await self.runtime.connect(peer.peer_id, addrs)
        for failure in outcome.failures:
            self.metrics.dial_failures.labels(reason=failure.reason).inc()
        if outcome.connected:
            self.metrics.dials.labels(result="ok").inc()
            self.backoff.succeeded(peer.peer_id)
            self.first_connection.set()
            return
        self.metrics.dials.labels(result="failed").inc()
        delay = self.backoff.failed(peer.peer_id)
        causes = (
            "; ".join(f"{f.multiaddr}: {f.reason} ({f.detail})" for f in outcome.failures[-3:])
            or "no routable multiaddr"
        )
        self._failures.warning(
            peer.peer_id,
            "dial %s (%s) failed: %s (attempt %d, next in %.1f s)",
            peer.name,
            peer.peer_id,
            causes,
            self.backoff.failures(peer.peer_id),
            delay,
        )
