"""Reading what the monitor received from its JSON-lines message log."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Delivery:
    sent: int
    received: int
    p50_ms: float
    p99_ms: float

    @property
    def lost(self) -> int:
        return max(0, self.sent - self.received)


def bench_latencies(log: Path, tag: str) -> list[float]:
    """Receive time minus send time (same host clock) of every ``bench`` message tagged
    ``tag`` in the monitor's log; each distinct message once."""
    seen: dict[int, float] = {}
    if not log.exists():
        return []
    with log.open() as fh:
        for line in fh:
            if f'"{tag}"' not in line:
                continue
            try:
                rec = json.loads(line)
                payload = rec["payload"]
                if payload.get("tag") != tag:
                    continue
                received = datetime.fromisoformat(rec["timestamp"]).timestamp()
                seen.setdefault(int(payload["i"]), (received - payload["sent"]) * 1000)
            except (ValueError, KeyError, TypeError):
                continue
    return list(seen.values())


def summarize(log: Path, tags: list[str], sent: int) -> Delivery:
    """What arrived of ``sent`` messages tagged with any of ``tags``, and how late."""
    lat = sorted(x for tag in tags for x in bench_latencies(log, tag))
    if not lat:
        return Delivery(sent, 0, float("nan"), float("nan"))
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return Delivery(sent, len(lat), statistics.median(lat), p99)
