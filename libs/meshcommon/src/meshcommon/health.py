"""What every service's ``GET /api/health`` says, and when it says it.

Three states, the same in the three services:

- ``ok``: nothing to report.
- ``degraded``: the service runs, but its view is incomplete or stale (no peers, an old
  bootstrap list, discovery failing). The problems are listed. A restart fixes none of
  these, so the HTTP status stays 200 and a container healthcheck leaves the service alone.
- ``failing``: the service cannot do its job and a restart is the cure: its libp2p node is
  gone, or a background loop has not completed a round for several periods (stuck). HTTP
  503, so the container healthcheck marks it unhealthy and Swarm replaces it.

Pure: each service's ``domain/health.py`` decides which problems it has, with the clock
passed in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import BaseModel, Field

STATUS_OK: Final = "ok"
STATUS_DEGRADED: Final = "degraded"
STATUS_FAILING: Final = "failing"
HealthStatus = Literal["ok", "degraded", "failing"]

# How many periods a loop may go without completing a round before it counts as stuck.
STUCK_AFTER_PERIODS: Final = 3
# How many refresh periods a bootstrap list may age before the view counts as stale.
STALE_AFTER_PERIODS: Final = 3


@dataclass(frozen=True)
class Problem:
    """One thing wrong: a stable ``code`` (for tools and alerts) and what it means here."""

    code: str
    detail: str
    failing: bool = False  # True: a restart is the cure (503); False: degraded (200)

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True)
class HealthVerdict:
    status: HealthStatus
    problems: tuple[Problem, ...] = ()

    @property
    def http_status(self) -> int:
        """200 while the service does its job (ok, degraded), 503 when it needs a restart."""
        return 503 if self.status == STATUS_FAILING else 200

    @property
    def reasons(self) -> list[str]:
        return [p.code for p in self.problems]


def verdict(problems: Iterable[Problem | None]) -> HealthVerdict:
    found = tuple(p for p in problems if p is not None)
    if any(p.failing for p in found):
        return HealthVerdict(STATUS_FAILING, found)
    return HealthVerdict(STATUS_DEGRADED if found else STATUS_OK, found)


class HealthFields(BaseModel):
    """The part of every ``/api/health`` answer that says how the service is."""

    status: HealthStatus = Field(
        description="ok; degraded (the view is incomplete or stale: HTTP 200, a restart "
        "would not help); failing (HTTP 503: a restart is the cure)"
    )
    reasons: list[str] = Field(
        default_factory=list, description="Stable codes of the problems, e.g. bootstrap_stale"
    )
    problems: list[str] = Field(
        default_factory=list, description="Each problem as 'code: what it means here'"
    )

    @classmethod
    def of(cls, v: HealthVerdict) -> dict[str, object]:
        return {"status": v.status, "reasons": v.reasons, "problems": [str(p) for p in v.problems]}


@dataclass
class LoopProgress:
    """When a background loop last completed a round: how a stuck loop is told apart from a
    slow one. The loop calls ``completed()`` after every round, good or bad."""

    started_at: float = field(default_factory=time.monotonic)
    last_completed_at: float | None = None
    rounds: int = 0

    def completed(self, now: float | None = None) -> None:
        self.last_completed_at = time.monotonic() if now is None else now
        self.rounds += 1

    def silent_for(self, now: float) -> float:
        """Seconds since the last completed round (since the start, before the first)."""
        return now - (self.last_completed_at or self.started_at)


def stuck(progress: LoopProgress, now: float, limit_s: float, what: str) -> Problem | None:
    """``<what>_stuck`` (failing) when no round completed within ``limit_s``."""
    silent = progress.silent_for(now)
    if silent <= limit_s:
        return None
    if progress.rounds == 0:
        detail = f"no round completed in the {silent:.0f} s since start (limit {limit_s:.0f} s)"
    else:
        detail = f"last round completed {silent:.0f} s ago (limit {limit_s:.0f} s)"
    return Problem(f"{what}_stuck", detail, failing=True)


def stuck_limit_s(period_s: float, round_budget_s: float = 0.0) -> float:
    """How long a loop may go without completing a round: ``STUCK_AFTER_PERIODS`` of its
    period, plus the longest one round may legitimately take beyond it (retries and
    timeouts of a slow or unreachable peer), so that a slow dependency never reads as a
    stuck loop."""
    return STUCK_AFTER_PERIODS * period_s + round_budget_s


def bootstrap_stale(age_s: float | None, refresh_s: float) -> Problem | None:
    """``bootstrap_stale`` (degraded) when the list in use is older than
    ``STALE_AFTER_PERIODS`` refresh periods: the peer works from an old picture."""
    limit = STALE_AFTER_PERIODS * refresh_s
    if age_s is None or age_s <= limit:
        return None
    return Problem(
        "bootstrap_stale",
        f"bootstrap list is {age_s:.0f} s old (more than {STALE_AFTER_PERIODS} refresh "
        f"periods, {limit:.0f} s)",
    )
