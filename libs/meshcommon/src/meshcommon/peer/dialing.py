"""Dials in the background, a bounded number at a time, at most one per peer.

A round of the agent's peering or of the monitor's connector starts the dials that are due
and waits for them only briefly (``settle``): a peer whose addresses all hang costs its own
dial the per-peer deadline, never the other peers' dials or the next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from meshcommon.aio import cancel_and_wait

log = logging.getLogger(__name__)

# How long a round waits for the dials it started: a dial on a LAN takes milliseconds, so
# the round usually ends with them done; one that hangs goes on alone.
ROUND_SETTLE_S = 1.0


class DialPool:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)
        self._sem: asyncio.Semaphore | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def in_flight(self, key: str) -> bool:
        return key in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, key: str, dial: Callable[[], Awaitable[None]]) -> bool:
        """Run ``dial()`` in the background (queued behind ``concurrency`` others);
        False when a dial for ``key`` is still running."""
        if key in self._tasks:
            return False
        if self._sem is None:  # created on the loop that runs the dials
            self._sem = asyncio.Semaphore(self.concurrency)
        sem = self._sem

        async def run() -> None:
            try:
                async with sem:
                    await dial()
            except asyncio.CancelledError:
                raise
            except Exception:  # a dial must never take the pool down
                log.exception("dial %s failed unexpectedly", key)
            finally:
                self._tasks.pop(key, None)

        self._tasks[key] = asyncio.create_task(run(), name=f"dial-{key[-8:]}")
        return True

    async def settle(self, within_s: float) -> int:
        """Wait up to ``within_s`` for the dials in flight; returns how many still run."""
        pending = list(self._tasks.values())
        if pending and within_s > 0:
            await asyncio.wait(pending, timeout=within_s)
        return len(self._tasks)

    async def aclose(self) -> None:
        await cancel_and_wait(*self._tasks.values())
        self._tasks.clear()
