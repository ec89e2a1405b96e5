"""The refresh loop of a peer (the agent's peering, the monitor's dialling): rounds driven
by news from WHOOSH rather than by a fixed sleep.

Each round fetches the bootstrap list with a wait (a long poll: it returns as soon as the
list changes) and then acts on it. A round that brought news is followed at once by the
next; one that came back early without news (WHOOSH down, static peers only, a WHOOSH that
does not hold requests) is followed only after the rest of the wait, so rounds never spin.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from meshcommon.health import LoopProgress

log = logging.getLogger(__name__)

# Rounds never run closer than this, however often the list changes.
MIN_ROUND_GAP_S = 0.2


async def run_refresh_rounds(
    round_: Callable[[float], Awaitable[bool]],
    next_wait_s: Callable[[], float],
    *,
    what: str,
    progress: LoopProgress | None = None,
) -> None:
    """Run ``round_(wait_s)`` forever; it returns whether it brought news. ``next_wait_s``
    says how long the next round may wait for news (the longest gap between rounds).
    ``progress`` is told of every round that ended (what health checks for a stuck loop)."""
    wait_s = 0.0  # the first round does not wait
    while True:
        started = time.monotonic()
        try:
            news = await round_(wait_s)
        except Exception:  # a bad round must not end the loop
            log.exception("%s round failed", what)
            news = False
        if progress is not None:
            progress.completed()
        unheld = max(0.0, wait_s - (time.monotonic() - started))
        wait_s = next_wait_s()
        await asyncio.sleep(MIN_ROUND_GAP_S if news else min(unheld, wait_s))
