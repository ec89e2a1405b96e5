"""Pings every connected peer once per period, a few at a time, so that the agent's
``/api/v1/mesh`` shows each connection's round-trip time (the node keeps the last one)."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from meshcommon.p2p.types import NodeSnapshot

log = logging.getLogger(__name__)

PING_CONCURRENCY = 4
PING_TIMEOUT_S = 5.0


class PingRuntime(Protocol):
    async def snapshot(self) -> NodeSnapshot: ...

    async def ping(self, peer_id: str, timeout_s: float | None = None) -> float: ...


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
        sem = asyncio.Semaphore(PING_CONCURRENCY)

        async def one(peer_id: str) -> None:
            async with sem:
                try:
                    await self.runtime.ping(peer_id, PING_TIMEOUT_S)
                except Exception as exc:  # PingError: not connected any more, timeout
                    self.failures += 1
                    log.debug("ping %s failed: %s", peer_id, exc)

        await asyncio.gather(*(one(p) for p in peers))
        self.sweeps += 1
