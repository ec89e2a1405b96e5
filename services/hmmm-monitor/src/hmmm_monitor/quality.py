"""Per-peer connection quality: round-trip time, message loss, delivery latency.

The field report's improvement 6 asks for latency, bandwidth and reliability per peer to
find problematic connections. Three measurements, each with what it can and cannot say:

- RTT: one libp2p ping per connected peer after every refresh round (``LinkProber``),
  kept as the last value and an EWMA, with failures counted. It measures the monitor's
  own link to that peer, not the agents' mesh links.
- Loss (``SeqnoTracker``): py-libp2p numbers each publisher's messages with one counter
  (initialised to the unix time at start, +1 per publish, shared by all topics). The
  monitor subscribes to every topic agents publish on, so a hole in a sender's sequence
  is a message lost before it reached the monitor, whichever path it took through the
  mesh. A publisher restart (a new counter) is not loss; it shows as a backwards jump, a
  forward jump over ``SEQNO_MAX_GAP``, or a jump from a counter well behind the clock (an
  agent publishing every 30 s) to one at the clock (freshly seeded from ``time.time()``).
  Limits: a publisher that restarts within ``SEQNO_CLOCK_SLACK_S`` of its first start,
  after a forward jump under ``SEQNO_MAX_GAP``, counts that jump as loss; publishers on
  topics we don't subscribe to would look lossy (we subscribe to all mesh topics).
- Delivery latency: receive time minus the availability payload's ``timestamp``. That
  timestamp is the sender's clock, so the figure includes clock skew between hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from hmmm_monitor.metrics import MonitorMetrics

log = logging.getLogger(__name__)

SEQNO_MAX_GAP = 1000  # a bigger forward jump is a publisher restart, not 999+ lost messages
SEQNO_CLOCK_SLACK_S = 30  # "at the clock": within this many seconds of the receive time
SEQNO_WINDOW = 1024  # recent seqnos remembered (as bits) to spot duplicates and late arrivals
_WINDOW_MASK = (1 << SEQNO_WINDOW) - 1
LATENCY_SAMPLES = 50

PING_CONCURRENCY = 8
PING_TIMEOUT_S = 5.0
RTT_EWMA_ALPHA = 0.2  # weight of the newest sample (TCP's SRTT uses 1/8)


def ewma(previous: float | None, sample: float, alpha: float = RTT_EWMA_ALPHA) -> float:
    """Exponentially weighted moving average; the first sample is taken as is."""
    if previous is None:
        return sample
    return alpha * sample + (1 - alpha) * previous


# -- loss ---------------------------------------------------------------------------------
FIRST, NEXT, GAP, DUPLICATE, LATE, RESTART = "first", "next", "gap", "duplicate", "late", "restart"


@dataclass(slots=True)
class SeqnoTracker:
    """Gap accounting for one publisher. ``observe`` is O(1) and allocation-light: it
    runs on the libp2p thread for every message.

    ``window`` has bit ``i`` set when seqno ``last - i`` was received, so a seqno at or
    below ``last`` is a duplicate (bit set) or a late arrival that an earlier gap had
    counted as lost (bit clear: un-count it).
    """

    last: int | None = None
    first: int = 0  # first seqno of the current epoch (counter run)
    window: int = 0
    received: int = 0  # distinct messages
    lost: int = 0  # holes in the sequence not (yet) filled
    duplicates: int = 0
    late: int = 0  # arrived after a later seqno (counted lost, then recovered)
    restarts: int = 0

    def observe(self, seqno: int, now: float | None = None) -> str:
        """Account for one message; ``now`` (unix receive time) enables the clock rule."""
        last = self.last
        if last is None:
            self._new_epoch(seqno)
            return FIRST
        if seqno > last:
            jump = seqno - last
            if jump > SEQNO_MAX_GAP or (jump > 1 and _reseeded(last, seqno, now)):
                self.restarts += 1
                self._new_epoch(seqno)
                return RESTART
            self.window = ((self.window << jump) | 1) & _WINDOW_MASK
            self.last = seqno
            self.received += 1
            self.lost += jump - 1
            return NEXT if jump == 1 else GAP
        back = last - seqno
        if seqno >= self.first and back < SEQNO_WINDOW:
            bit = 1 << back
            if self.window & bit:
                self.duplicates += 1
                return DUPLICATE
            self.window |= bit
            self.received += 1
            self.lost -= 1
            self.late += 1
            return LATE
        self.restarts += 1  # a new counter that started below the old one
        self._new_epoch(seqno)
        return RESTART

    def _new_epoch(self, seqno: int) -> None:
        self.last = self.first = seqno
        self.window = 1
        self.received += 1

    @property
    def delivery_ratio(self) -> float | None:
        total = self.received + self.lost
        return self.received / total if total else None


def _reseeded(last: int, seqno: int, now: float | None) -> bool:
    """py-libp2p seeds a publisher's counter with the unix time at start. A slow
    publisher's counter falls behind the clock; after a restart it is back at the clock.
    A fast publisher (> 1 msg/s) runs ahead of the clock, so its gaps stay loss."""
    if now is None:
        return False
    clock = int(now) - SEQNO_CLOCK_SLACK_S
    return last < clock <= seqno


@dataclass(frozen=True)
class DeliveryView:
    """A consistent copy of one sender's delivery figures (read side)."""

    received: int
    lost: int
    duplicates: int
    late: int
    restarts: int
    delivery_ratio: float | None
    latency_ms_median: float | None
    latency_samples: int

    def to_dict(self) -> dict[str, object]:
        ratio = self.delivery_ratio
        median = self.latency_ms_median
        return {
            "messages_lost": self.lost,
            "delivery_ratio": None if ratio is None else round(ratio, 4),
            # Sender clock: includes clock skew between the agent's host and ours.
            "delivery_latency_ms_median": None if median is None else round(median, 1),
            "delivery_latency_clock": "sender",
            "delivery_latency_samples": self.latency_samples,
            "seqno": {
                "received": self.received,
                "duplicates": self.duplicates,
                "late": self.late,
                "restarts": self.restarts,
            },
        }


EMPTY_DELIVERY = DeliveryView(0, 0, 0, 0, 0, None, None, 0)


def delivery_view(tracker: SeqnoTracker | None, latencies: Iterable[float]) -> DeliveryView:
    samples = list(latencies)
    median = statistics.median(samples) if samples else None
    if tracker is None:
        return DeliveryView(0, 0, 0, 0, 0, None, median, len(samples))
    return DeliveryView(
        tracker.received,
        tracker.lost,
        tracker.duplicates,
        tracker.late,
        tracker.restarts,
        tracker.delivery_ratio,
        median,
        len(samples),
    )


def latency_window() -> deque[float]:
    return deque(maxlen=LATENCY_SAMPLES)


# -- RTT ----------------------------------------------------------------------------------
class Pinger(Protocol):
    async def ping(self, peer_id: str) -> float: ...


@dataclass
class LinkQuality:
    rtt_ms: float | None = None
    rtt_ewma_ms: float | None = None
    pings: int = 0
    ping_failures: int = 0
    consecutive_failures: int = 0
    last_ping_at: float | None = None
    last_ping_error: str | None = None

    def record_ok(self, rtt_ms: float, at: float, alpha: float = RTT_EWMA_ALPHA) -> None:
        self.pings += 1
        self.rtt_ms = rtt_ms
        self.rtt_ewma_ms = ewma(self.rtt_ewma_ms, rtt_ms, alpha)
        self.consecutive_failures = 0
        self.last_ping_at = at
        self.last_ping_error = None

    def record_failure(self, error: str, at: float) -> None:
        self.pings += 1
        self.ping_failures += 1
        self.consecutive_failures += 1
        self.last_ping_at = at
        self.last_ping_error = error

    def to_dict(self) -> dict[str, object]:
        return {
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 3),
            "rtt_ewma_ms": None if self.rtt_ewma_ms is None else round(self.rtt_ewma_ms, 3),
            "pings": self.pings,
            "ping_failures": self.ping_failures,
            "last_ping_at": self.last_ping_at,
            "last_ping_error": self.last_ping_error,
        }


EMPTY_LINK = LinkQuality()


class LinkProber:
    """Pings peers in the background, a bounded number at a time.

    ``start_sweep`` returns at once so a refresh round never waits on a slow peer; a
    sweep still running when the next one is due is left alone (no pile-up), and each
    ping is capped at ``timeout_s``.
    """

    def __init__(
        self,
        pinger: Pinger,
        *,
        concurrency: int = PING_CONCURRENCY,
        timeout_s: float = PING_TIMEOUT_S,
        alpha: float = RTT_EWMA_ALPHA,
        metrics: MonitorMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pinger = pinger
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.alpha = alpha
        self.metrics = metrics
        self._clock = clock
        self.links: dict[str, LinkQuality] = {}
        self._task: asyncio.Task[None] | None = None
        self.sweeps = 0
        self.skipped_sweeps = 0

    def start_sweep(self, peer_ids: Iterable[str]) -> bool:
        """Start pinging ``peer_ids`` in the background; False if one is still running."""
        if self._task is not None and not self._task.done():
            self.skipped_sweeps += 1
            return False
        self._task = asyncio.create_task(self.sweep(list(peer_ids)), name="hmmm-ping-sweep")
        return True

    async def sweep(self, peer_ids: list[str]) -> None:
        sem = asyncio.Semaphore(self.concurrency)

        async def one(pid: str) -> bool:
            async with sem:
                return await self._probe(pid)

        answered = await asyncio.gather(*(one(pid) for pid in peer_ids))
        self.sweeps += 1
        if self.metrics is not None:
            # A peer that is gone or did not answer must not keep reporting its last RTT.
            self.metrics.prune_peer_rtt({p for p, ok in zip(peer_ids, answered, strict=True) if ok})

    async def _probe(self, peer_id: str) -> bool:
        link = self.links.setdefault(peer_id, LinkQuality())
        try:
            async with asyncio.timeout(self.timeout_s):
                rtt_ms = await self.pinger.ping(peer_id)
        except TimeoutError:
            self._failed(peer_id, link, f"timeout: no pong within {self.timeout_s:g} s")
            return False
        except Exception as exc:  # PingError, runtime stopped, ...: keep sweeping
            self._failed(peer_id, link, str(exc) or type(exc).__name__)
            return False
        link.record_ok(rtt_ms, self._clock(), self.alpha)
        if self.metrics is not None:
            self.metrics.observe_rtt(peer_id, rtt_ms / 1000)
        return True

    def _failed(self, peer_id: str, link: LinkQuality, error: str) -> None:
        link.record_failure(error, self._clock())
        if self.metrics is not None:
            self.metrics.ping_failures.inc()
        if link.consecutive_failures in (1, 10) or link.consecutive_failures % 100 == 0:
            log.warning(
                "ping %s failed (%d in a row): %s", peer_id, link.consecutive_failures, error
            )

    def get(self, peer_id: str) -> LinkQuality:
        return self.links.get(peer_id, EMPTY_LINK)

    def prune(self, keep: set[str]) -> None:
        """Forget peers that are neither connected nor expected (bounded memory)."""
        for pid in [p for p in self.links if p not in keep]:
            del self.links[pid]

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
