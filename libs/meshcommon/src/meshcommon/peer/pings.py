"""One ping sweep, the agent's and the monitor's: every peer pinged, a bounded number at a
time, each within a deadline, and every outcome kept (an RTT or the error), so a slow or
dead peer costs its own deadline and never holds up the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence


async def ping_each(
    peer_ids: Sequence[str],
    ping: Callable[[str], Awaitable[float]],
    *,
    concurrency: int,
    timeout_s: float,
) -> list[float | Exception]:
    """``ping(peer_id)`` for each peer, at most ``concurrency`` at once, each cut off after
    ``timeout_s`` (``TimeoutError``); the round-trip times in milliseconds or the errors,
    in the order of ``peer_ids``."""
    gate = asyncio.Semaphore(concurrency)

    async def one(peer_id: str) -> float | Exception:
        async with gate:
            try:
                async with asyncio.timeout(timeout_s):
                    return await ping(peer_id)
            except Exception as exc:  # PingError, a timeout, the node stopping
                return exc

    return list(await asyncio.gather(*(one(p) for p in peer_ids)))
