"""uvicorn's server with a 1 Hz main loop instead of 10 Hz.

Replaces: ``uvicorn.Server.main_loop`` (uvicorn 0.54) wakes every 0.1 s only to refresh
the ``Date`` header (once a second) and to notice ``should_exit``. In an idle agent those
wake-ups were most of the asyncio loop's work (about 18 of 22 per second). This loop ticks
once a second, which is the Date header's resolution, and a signal wakes it at once, so
stopping is as quick as before. Upstream fix: wait on an event set by ``handle_exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import types

import uvicorn

TICK_S = 1.0
TICKS_PER_UVICORN_SECOND = 10  # on_tick refreshes the Date header when counter % 10 == 0


class QuietServer(uvicorn.Server):
    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def handle_exit(self, sig: int, frame: types.FrameType | None) -> None:
        super().handle_exit(sig, frame)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)  # safe from a signal handler

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + TICKS_PER_UVICORN_SECOND) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)
            should_exit = await self.on_tick(counter)
