"""One log format for every service: stderr, one line per event.

stdout is left alone: the monitor writes its JSON-lines message log there.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Hashable


def configure_logging(level: str = "INFO", service: str = "") -> None:
    prefix = f"{service} " if service else ""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s",
        force=True,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(LibraryFloodFilter())
    # py-libp2p logs every failed handshake at WARNING with little context; the services
    # log the root cause themselves (see meshcommon.p2p.errors).
    for noisy in ("libp2p", "multiaddr", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(
            max(logging.getLogger().level, logging.ERROR) if noisy == "libp2p" else logging.WARNING
        )


class _Throttle:
    """Per key: let one through per interval and count the rest. Keys are bounded: past
    ``max_keys`` the table is cleared, so keys a peer can forge cannot grow it."""

    def __init__(self, interval_s: float, max_keys: int, clock: Callable[[], float]) -> None:
        self.interval_s, self.max_keys = interval_s, max_keys
        self._clock = clock
        self._last: dict[Hashable, tuple[float, int]] = {}

    def passes(self, key: Hashable) -> int | None:
        """None: suppressed (counted); else how many were suppressed since the last one."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self._last[key] = (last[0], last[1] + 1)
            return None
        if last is None and len(self._last) >= self.max_keys:
            self._last.clear()
        self._last[key] = (now, 0)
        return last[1] if last is not None else 0

    def __len__(self) -> int:
        return len(self._last)


class RateLimitedLog:
    """At most one log line per key per interval, saying how many were suppressed.

    For failures a peer can repeat as fast as it likes (bad gossip, a failing dial): the
    first one is logged with its real cause, the repeats are counted, not printed. Keys are
    bounded: past ``max_keys`` the table is cleared, so forged senders cannot grow it.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.interval_s = logger, interval_s
        self._throttle = _Throttle(interval_s, max_keys, clock)

    def log(self, level: int, key: Hashable, msg: str, *args: object) -> bool:
        """Log unless ``key`` was logged less than ``interval_s`` ago; True if logged."""
        suppressed = self._throttle.passes(key)
        if suppressed is None:
            return False
        if suppressed:
            msg += " (%d more like it suppressed)"
            args = (*args, suppressed)
        self.logger.log(level, msg, *args)
        return True

    def warning(self, key: Hashable, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def __len__(self) -> int:
        """Keys tracked (bounded by ``max_keys``)."""
        return len(self._throttle)


class LibraryFloodFilter(logging.Filter):
    """At most one record per library message per interval, the repeats counted.

    py-libp2p logs every failed dial at ERROR ("Failed to open TCP stream: ..."): a peer
    advertising thousands of unreachable addresses, redialled every round, filled every
    log with thousands of lines. The services log each failure's root cause themselves,
    rate-limited; the library's own lines are kept (a real library error stays visible)
    but a repeat of the same message within ``interval_s`` is dropped, and the next one
    that gets through says how many were.
    """

    def __init__(
        self,
        prefixes: tuple[str, ...] = ("libp2p", "multiaddr"),
        interval_s: float = 60.0,
        *,
        max_keys: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self._throttle = _Throttle(interval_s, max_keys, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        suppressed = self._throttle.passes((record.name, str(record.msg)[:200]))
        if suppressed is None:
            return False
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} more like it suppressed)"
        return True
