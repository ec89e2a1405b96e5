"""The soak's measuring side: read each service's /metrics (RSS, open file descriptors,
asyncio and trio tasks), print a table row per sample, and judge whether anything grows
without bound (a trend fitted over the run; the first third against the last)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

# (column, metric name pattern; {p} is the service's metric prefix)
SERIES = (
    ("rss_mib", "process_resident_memory_bytes"),
    ("fds", "process_open_fds"),
    ("asyncio", "{p}_asyncio_tasks"),
    ("trio", "{p}_trio_tasks"),
)
PREFIX = {"whoosh": "whoosh", "hmmm-monitor": "hmmm"}  # agents: chorus_agent


def read_sample(url: str, service: str) -> dict[str, float]:
    prefix = PREFIX.get(service, "chorus_agent")
    text = httpx.get(f"{url}/metrics", timeout=5).text
    values = {
        s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
    }
    out: dict[str, float] = {}
    for column, pattern in SERIES:
        value = values.get(pattern.format(p=prefix))
        if value is not None:
            out[column] = value / 2**20 if column == "rss_mib" else value
    return out


# How much a series may grow from the first third of the run to the last before it counts
# as unbounded: (absolute, fraction of the first third's mean); the larger applies.
TOLERANCE = {
    "rss_mib": (12.0, 0.10),
    "fds": (8.0, 0.15),
    "asyncio": (10.0, 0.25),
    "trio": (20.0, 0.25),
}


@dataclass
class Verdict:
    service: str
    column: str
    first: float
    last: float
    slope_per_h: float
    allowed: float

    @property
    def grows(self) -> bool:
        return self.slope_per_h > 0 and self.last - self.first > self.allowed

    def line(self) -> str:
        flag = "GROWS" if self.grows else "flat"
        return (
            f"{self.service:<13} {self.column:<8} first third {self.first:9.1f}  "
            f"last third {self.last:9.1f}  trend {self.slope_per_h:+9.1f}/h  "
            f"allowed +{self.allowed:.1f}  {flag}"
        )


def _slope(ts: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over ts (per second)."""
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    den = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / den if den else 0.0


@dataclass
class SoakRecorder:
    services: dict[str, str]  # name -> base URL
    started: float = field(default_factory=time.monotonic)
    samples: dict[str, list[tuple[float, dict[str, float]]]] = field(default_factory=dict)
    header_printed: bool = False

    def sample(self, extra: str = "") -> None:
        t = time.monotonic() - self.started
        cells = []
        for name, url in self.services.items():
            try:
                values = read_sample(url, name)
            except (httpx.HTTPError, ValueError) as exc:
                cells.append(f"{name}: unreadable ({type(exc).__name__})")
                continue
            self.samples.setdefault(name, []).append((t, values))
            trio = f"{values['trio']:4.0f}" if "trio" in values else f"{'-':>4}"
            cells.append(
                f"{values.get('rss_mib', float('nan')):6.1f} {values.get('fds', 0):4.0f} "
                f"{values.get('asyncio', 0):4.0f} {trio}"
            )
        if not self.header_printed:
            names = " | ".join(f"{n:<21}" for n in self.services)
            print(f"{'t (s)':>6} | {names} | monitor", flush=True)
            one = f"{'RSS':>6} {'fds':>4} {'aio':>4} {'trio':>4}"
            cols = " | ".join(f"{one:<21}" for _ in self.services)
            print(f"{'':>6} | {cols} |", flush=True)
            self.header_printed = True
        print(f"{t:6.0f} | " + " | ".join(f"{c:<21}" for c in cells) + f" | {extra}", flush=True)

    def verdicts(self) -> list[Verdict]:
        out = []
        for name, rows in self.samples.items():
            third = max(1, len(rows) // 3)
            for column, _ in SERIES:
                points = [(t, v[column]) for t, v in rows if column in v]
                if len(points) < 3:
                    continue
                ts, ys = [p[0] for p in points], [p[1] for p in points]
                first, last = statistics.fmean(ys[:third]), statistics.fmean(ys[-third:])
                absolute, fraction = TOLERANCE[column]
                allowed = max(absolute, fraction * first)
                out.append(Verdict(name, column, first, last, _slope(ts, ys) * 3600, allowed))
        return out
