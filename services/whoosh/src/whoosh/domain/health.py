"""WHOOSH's own health (``meshcommon.health``): ok, degraded or failing, with the problems
named. Pure: the caller passes the last round's figures and the clock."""

from __future__ import annotations

from meshcommon.health import HealthVerdict, LoopProgress, Problem, stuck, verdict


def assess_health(
    *,
    discovery_error: str | None,
    rounds_done: bool,
    discovered: int,
    healthy: int,
    progress: LoopProgress,
    stuck_after_s: float,
    now: float,
) -> HealthVerdict:
    """Failing (a restart is the cure): the discovery loop has completed no round within
    ``stuck_after_s``. Degraded (WHOOSH answers, but its list is not the mesh; a restart
    would not change that): discovery reports an error, it found no agent, or none of
    the agents it found answers its health check."""
    problems: list[Problem | None] = [stuck(progress, now, stuck_after_s, "discovery")]
    if discovery_error:
        problems.append(Problem("discovery_failing", discovery_error))
    if rounds_done and discovered == 0 and not discovery_error:
        problems.append(Problem("no_agents_discovered", "discovery found no agent"))
    elif rounds_done and discovered and healthy == 0:
        problems.append(
            Problem("all_agents_unreachable", f"none of the {discovered} agents found is healthy")
        )
    return verdict(problems)
