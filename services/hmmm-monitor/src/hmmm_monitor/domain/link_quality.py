"""The monitor's own link to each connected peer: libp2p ping round-trip times.

One ping per connected peer after every refresh round (``workers.link_prober``), kept as
the last value and an EWMA, with failures counted. It measures the monitor's own link to
that peer, not the agents' mesh links.
"""

from __future__ import annotations

from dataclasses import dataclass

RTT_EWMA_ALPHA = 0.2  # weight of the newest sample (TCP's SRTT uses 1/8)


def ewma(previous: float | None, sample: float, alpha: float = RTT_EWMA_ALPHA) -> float:
    """Exponentially weighted moving average; the first sample is taken as is."""
    if previous is None:
        return sample
    return alpha * sample + (1 - alpha) * previous


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
