"""Waiting for a condition with a deadline: the one polling helper of the tests, the local
runner and the benchmarks (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import httpx

T = TypeVar("T")

# What a probe may raise while the thing it looks at is still coming up: a service that
# does not answer yet, a half-written file, a key that is not there yet.
TRANSIENT: tuple[type[BaseException], ...] = (
    httpx.HTTPError,
    OSError,
    ValueError,
    KeyError,
    TypeError,
)


class _Deadline:
    """What both waits share: the clock, the last value seen, the error at the end."""

    def __init__(self, within_s: float, what: str) -> None:
        self.within_s, self.what = within_s, what
        self.started = time.monotonic()
        self.last: object = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def not_yet(self, last: object) -> None:
        """Record a miss; raise ``TimeoutError`` once the deadline has passed."""
        self.last = last
        if self.elapsed() > self.within_s:
            raise TimeoutError(
                f"timed out after {self.within_s:.0f}s waiting for {self.what}; last: {self.last!r}"
            )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def wait_until(
    probe: Callable[[], T],
    ok: Callable[[T], object] = bool,
    *,
    within_s: float,
    interval: float = 0.2,
    what: str = "condition",
    transient: tuple[type[BaseException], ...] = TRANSIENT,
) -> tuple[T, float]:
    """Call ``probe`` until ``ok(value)``; returns ``(value, seconds waited)``.

    Exceptions in ``transient`` count as "not yet". After ``within_s`` seconds it raises
    ``TimeoutError`` naming ``what`` and the last value (or error) seen.
    """
    deadline = _Deadline(within_s, what)
    while True:
        try:
            value = probe()
        except transient as exc:
            deadline.not_yet(_describe(exc))
        else:
            if ok(value):
                return value, deadline.elapsed()
            deadline.not_yet(value)
        time.sleep(interval)


async def wait_until_async(
    probe: Callable[[], Awaitable[T]],
    ok: Callable[[T], object] = bool,
    *,
    within_s: float,
    interval: float = 0.05,
    what: str = "condition",
    transient: tuple[type[BaseException], ...] = TRANSIENT,
) -> tuple[T, float]:
    """``wait_until`` for coroutines: ``await probe()`` until ``ok(value)``."""
    deadline = _Deadline(within_s, what)
    while True:
        try:
            value = await probe()
        except transient as exc:
            deadline.not_yet(_describe(exc))
        else:
            if ok(value):
                return value, deadline.elapsed()
            deadline.not_yet(value)
        await anyio.sleep(interval)  # asyncio (the services) or trio (the libp2p node)
