"""Small asyncio helpers every service's start/stop needs."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(*tasks: asyncio.Task[object] | None) -> None:
    """Cancel background tasks and wait until each has finished.

    ``None`` is skipped. A task that ended with an error has logged it in its own loop;
    stopping must go on, so the error is collected here (asyncio would otherwise warn that
    it was never retrieved) but not re-raised.
    """
    present = [t for t in tasks if t is not None]
    for task in present:
        task.cancel()
    for task in present:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
