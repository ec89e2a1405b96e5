"""The shared health vocabulary: which problems make a service degraded or failing."""

from __future__ import annotations

from meshcommon.health import (
    LoopProgress,
    Problem,
    bootstrap_stale,
    stuck,
    stuck_limit_s,
    verdict,
)


def test_failing_wins_over_degraded_and_only_failing_is_503() -> None:
    ok = verdict([None])
    degraded = verdict([Problem("isolated", "no peers"), None])
    failing = verdict([Problem("isolated", "no peers"), Problem("x_stuck", "", failing=True)])
    assert (ok.status, ok.http_status, ok.reasons) == ("ok", 200, [])
    assert (degraded.status, degraded.http_status, degraded.reasons) == (
        "degraded",
        200,
        ["isolated"],
    )
    assert (failing.status, failing.http_status) == ("failing", 503)
    assert failing.reasons == ["isolated", "x_stuck"]


def test_a_loop_is_stuck_only_after_its_limit_without_a_round() -> None:
    progress = LoopProgress(started_at=0.0)
    assert stuck(progress, now=30.0, limit_s=30.0, what="refresh") is None
    problem = stuck(progress, now=31.0, limit_s=30.0, what="refresh")
    assert problem is not None and problem.code == "refresh_stuck" and problem.failing
    assert "since start" in problem.detail
    progress.completed(now=40.0)
    assert stuck(progress, now=69.0, limit_s=30.0, what="refresh") is None
    late = stuck(progress, now=71.0, limit_s=30.0, what="refresh")
    assert late is not None and "31 s ago" in late.detail
    assert stuck_limit_s(10.0, 23.0) == 53.0


def test_a_bootstrap_list_is_stale_after_three_periods() -> None:
    assert bootstrap_stale(None, 10.0) is None
    assert bootstrap_stale(30.0, 10.0) is None
    stale = bootstrap_stale(264.0, 2.0)
    assert stale is not None and stale.code == "bootstrap_stale" and not stale.failing
    assert "264 s old" in stale.detail
