"""uvicorn's server without a timer: its main loop sleeps until it is told to stop.

Replaces: ``uvicorn.Server.main_loop`` (uvicorn 0.54) wakes every 0.1 s only to refresh
the ``Date`` header (once a second) and to notice ``should_exit``. In an idle agent those
wake-ups were most of the asyncio loop's work. Here neither needs a timer:

- the ``Date`` header is made when a response asks for the default headers (uvicorn reads
  ``server_state.default_headers`` once per request), at most once a second;
- setting ``should_exit`` (``handle_exit`` from a signal, or anyone else) wakes the loop at
  once, so stopping is as quick as before.

With ``limit_max_requests`` or ``callback_notify`` (unused here) uvicorn's own loop runs.
Upstream fix: wait on an event set by ``handle_exit``.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import uvicorn
from uvicorn.server import ServerState


class FreshDateState(ServerState):
    """``default_headers`` with a ``Date`` made on demand (cached for its one second)."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._config = config
        self._second = -1
        self._headers: list[tuple[bytes, bytes]] = []
        super().__init__()

    @property
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            date = [(b"date", formatdate(now, usegmt=True).encode())]
            # encoded_headers exists once uvicorn has loaded the config (before serving)
            extra = list(getattr(self._config, "encoded_headers", []))
            self._headers = (date if self._config.date_header else []) + extra
        return self._headers

    @default_headers.setter
    def default_headers(self, value: list[tuple[bytes, bytes]]) -> None:
        """uvicorn's ``on_tick`` assigns a copy made then; the getter's is fresher."""


class QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._exit = False
        super().__init__(config)
        if self._timerless():
            self.server_state = FreshDateState(config)

    def _timerless(self) -> bool:
        return self.config.limit_max_requests is None and self.config.callback_notify is None

    @property
    def should_exit(self) -> bool:
        return self._exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit = value
        loop, wake = self._loop, self._wake
        if value and loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)  # safe from a signal handler or a thread

    async def main_loop(self) -> None:
        if not self._timerless():
            await super().main_loop()
            return
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        while not await self.on_tick(0):
            await self._wake.wait()
            self._wake.clear()
