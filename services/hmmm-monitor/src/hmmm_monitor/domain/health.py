"""The monitor's own health: ``ok`` or ``degraded`` with the problems named."""

from __future__ import annotations

from dataclasses import dataclass

STATUS_OK = "ok"
STATUS_DEGRADED = "degraded"

PROBLEM_NODE_DOWN = "libp2p node not running"
PROBLEM_NO_EXPECTED = "no expected peers (bootstrap empty)"
PROBLEM_NONE_HEARD = "no expected peer heard within the window"


@dataclass(frozen=True)
class HealthVerdict:
    status: str
    problems: tuple[str, ...]


def assess_health(*, node_running: bool, expected: int, heard: int) -> HealthVerdict:
    problems = []
    if not node_running:
        problems.append(PROBLEM_NODE_DOWN)
    if expected == 0:
        problems.append(PROBLEM_NO_EXPECTED)
    elif heard == 0:
        problems.append(PROBLEM_NONE_HEARD)
    return HealthVerdict(STATUS_DEGRADED if problems else STATUS_OK, tuple(problems))
