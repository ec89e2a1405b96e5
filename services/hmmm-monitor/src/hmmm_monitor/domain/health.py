"""The monitor's own health (``meshcommon.health``): ok, degraded or failing, with the
problems named."""

from __future__ import annotations

from meshcommon.health import HealthVerdict, LoopProgress, Problem, bootstrap_stale, stuck, verdict


def assess_health(
    *,
    node_running: bool,
    expected: int,
    connected: int,
    heard: int,
    bootstrap_age_s: float | None,
    refresh_s: float,
    refresh: LoopProgress,
    stuck_after_s: float,
    now: float,
) -> HealthVerdict:
    """Failing (a restart is the cure, and a restarted monitor loses nothing it cannot
    re-learn from WHOOSH and the gossip): its libp2p node does not answer, or its refresh
    loop has completed no round within ``stuck_after_s``. Degraded (its view is
    incomplete or old, which a restart would not fix): no expected peers, none connected,
    none heard, a bootstrap list older than a few refresh periods."""
    problems: list[Problem | None] = [
        None
        if node_running
        else Problem("node_down", "the libp2p node does not answer", failing=True),
        stuck(refresh, now, stuck_after_s, "refresh"),
        bootstrap_stale(bootstrap_age_s, refresh_s),
    ]
    if expected == 0:
        problems.append(Problem("no_expected_peers", "the bootstrap list is empty"))
    else:
        if connected == 0:
            problems.append(
                Problem("none_connected", f"connected to none of the {expected} expected peers")
            )
        if heard == 0:
            problems.append(
                Problem("none_heard", f"none of the {expected} expected peers heard recently")
            )
    return verdict(problems)
