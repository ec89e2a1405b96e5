"""How each sender's gossip reaches the monitor: message loss and delivery latency.

Two measurements, each with what it can and cannot say (the third per-peer figure, the
RTT of the monitor's own link, is in ``link_quality``):

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

import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

SEQNO_MAX_GAP = 1000  # a bigger forward jump is a publisher restart, not 999+ lost messages
SEQNO_CLOCK_SLACK_S = 30  # "at the clock": within this many seconds of the receive time
SEQNO_WINDOW = 1024  # recent seqnos remembered (as bits) to spot duplicates and late arrivals
_WINDOW_MASK = (1 << SEQNO_WINDOW) - 1
LATENCY_SAMPLES = 50


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
    gaps: int = 0  # messages ever counted lost, late arrivals included (only grows)
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
            self.gaps += jump - 1
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
