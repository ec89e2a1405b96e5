"""Pings every connected peer once per period, a few at a time, so that the agent's
``/api/v1/mesh`` shows each connection's round-trip time (the node keeps the last one)
and its neighbours report each link's median RTT and loss; then identifies the peers
not identified yet (once per connection: their agent version for the report)."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from meshcommon.p2p.types import NodeSnapshot
from meshcommon.peer.pings import ping_each

log = logging.getLogger(__name__)

PING_CONCURRENCY = 4
PING_TIMEOUT_S = 5.0


class PingRuntime(Protocol):
    async def snapshot(self) -> NodeSnapshot: ...

    async def ping(self, peer_id: str, timeout_s: float | None = None) -> float: ...

    async def identify_neighbours(self) -> int: ...


class PeerPinger:
    def __init__(self, runtime: PingRuntime, interval_s: float) -> None:
        self.runtime = runtime
        self.interval_s = interval_s
        self.sweeps = 0
        self.failures = 0  # pings that failed or timed out (the RTT then ages in the view)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sweep()
            except Exception as exc:  # the node stopping, etc.: try again next period
                log.debug("ping sweep failed: %s", exc)

    async def sweep(self) -> None:
        peers = (await self.runtime.snapshot()).connected_peers

        async def ping(peer_id: str) -> float:
            return await self.runtime.ping(peer_id, PING_TIMEOUT_S)

        # The node's own deadline comes first, with the clearer error, and the node counts
        # the failure (liveness closes a dead connection after 3); this one (the node may
        # spend 1 s resetting a timed-out stream) only bounds a node that stopped answering.
        outcomes = await ping_each(
            peers, ping, concurrency=PING_CONCURRENCY, timeout_s=PING_TIMEOUT_S + 2
        )
        for peer_id, outcome in zip(peers, outcomes, strict=True):
            if isinstance(outcome, Exception):  # not connected any more, timeout
                self.failures += 1
                log.debug("ping %s failed: %s", peer_id, outcome)
        await self.runtime.identify_neighbours()
        self.sweeps += 1
