"""The soak's churn (``Churn``: one agent restarted at a time, round-robin) and its
measuring side: read each service's /metrics (RSS, open file descriptors,
asyncio and trio tasks), print a table row per sample, and judge whether anything grows
without bound (a trend fitted over the run; the first third against the last).

A service that keeps data up to a cap (the monitor's recent messages) grows by design
until the cap is full; how long that takes depends on the traffic, not on the soak. Its
RSS is judged twice, both independent of the soak's length: never above its idle RSS +
the cap + ``CAP_ALLOWANCE_MIB``, and, for the trend, only over the samples taken once the
cap was full (none: no trend verdict)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from meshlocal import LocalMesh

# (column, metric name pattern; {p} is the service's metric prefix)
SERIES = (
    ("rss_mib", "process_resident_memory_bytes"),
    ("fds", "process_open_fds"),
    ("asyncio", "{p}_asyncio_tasks"),
    ("trio", "{p}_trio_tasks"),
)
PREFIX = {"whoosh": "whoosh", "hmmm-monitor": "hmmm"}  # agents: chorus_agent
# (column, gauge) of a capped store: the bytes it counts and its cap (MiB in the samples)
CAPPED = (("kept_mib", "{p}_messages_kept_bytes"), ("cap_mib", "{p}_messages_kept_bytes_limit"))
# A cap counts as full from this fraction on (the oldest go as the newest come).
FULL_FRACTION = 0.9
# RSS a capped service may hold beyond its idle RSS and its cap (issue 20: cap + 20 MiB).
CAP_ALLOWANCE_MIB = 20.0


def read_sample(url: str, service: str) -> dict[str, float]:
    prefix = PREFIX.get(service, "chorus_agent")
    text = httpx.get(f"{url}/metrics", timeout=5).text
    values = {
        s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
    }
    out: dict[str, float] = {}
    for column, pattern in SERIES + CAPPED:
        value = values.get(pattern.format(p=prefix))
        if value is not None:
            out[column] = value / 2**20 if column.endswith("_mib") else value
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


@dataclass
class Bound:
    """A capped service's RSS against what its cap allows: idle RSS + cap + allowance."""

    service: str
    idle: float
    cap: float
    peak: float

    @property
    def allowed(self) -> float:
        return self.idle + self.cap + CAP_ALLOWANCE_MIB

    @property
    def exceeded(self) -> bool:
        return self.peak > self.allowed

    def line(self) -> str:
        flag = "OVER" if self.exceeded else "within"
        return (
            f"{self.service:<13} rss_mib  peak {self.peak:.1f} MiB, allowed {self.allowed:.1f} "
            f"(idle {self.idle:.1f} + cap {self.cap:.1f} + {CAP_ALLOWANCE_MIB:.0f})  {flag}"
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
            for column, _ in SERIES:
                points = [(t, v[column]) for t, v in rows if column in v]
                if column == "rss_mib" and any("cap_mib" in v for _, v in rows):
                    # Growth until the cap is full is by design: the trend starts there.
                    points = [
                        (t, v[column])
                        for t, v in rows
                        if column in v and v.get("kept_mib", 0) >= FULL_FRACTION * v["cap_mib"]
                    ]
                if len(points) < 3:
                    continue
                third = max(1, len(points) // 3)
                ts, ys = [p[0] for p in points], [p[1] for p in points]
                first, last = statistics.fmean(ys[:third]), statistics.fmean(ys[-third:])
                absolute, fraction = TOLERANCE[column]
                allowed = max(absolute, fraction * first)
                out.append(Verdict(name, column, first, last, _slope(ts, ys) * 3600, allowed))
        return out

    def bounds(self, idle_rss_mib: dict[str, float]) -> list[Bound]:
        """Each capped service's peak RSS against its idle RSS (measured before the load)
        plus its cap plus the allowance."""
        out = []
        for name, rows in self.samples.items():
            caps = [v["cap_mib"] for _, v in rows if "cap_mib" in v]
            peaks = [v["rss_mib"] for _, v in rows if "rss_mib" in v]
            if caps and peaks and name in idle_rss_mib:
                out.append(Bound(name, idle_rss_mib[name], max(caps), max(peaks)))
        return out


@dataclass
class Churn:
    """The soak's churn, shared by the soak test and the soak benchmark: one agent
    restarted (SIGTERM, then started again) every ``every_s``, round-robin over agents 1 to
    ``agents - 1``. The last agent is never restarted, so its figures stay comparable over
    the run."""

    mesh: LocalMesh
    agents: int
    every_s: float
    restarts: int = 0

    def ticks(self, until: float, tick_s: float) -> Iterator[float]:
        """Until ``until`` (``time.monotonic()``), the time of a tick every ``tick_s``;
        before each, the next agent is restarted when its turn has come."""
        next_churn = time.monotonic() + self.every_s
        while (now := time.monotonic()) < until:
            if now >= next_churn:
                victim = self.mesh.service(f"agent-{self.restarts % (self.agents - 1) + 1:02d}")
                victim.terminate()
                victim.wait_or_kill(10)
                victim.start()
                self.restarts += 1
                next_churn += self.every_s
            yield now
            # A sampling period, not a wait for a condition: the caller reads figures over time.
            time.sleep(tick_s)
