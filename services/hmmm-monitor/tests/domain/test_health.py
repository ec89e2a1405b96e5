"""The monitor's health: degraded while its view is incomplete or old, failing only when a
restart is the cure."""

from __future__ import annotations

from hmmm_monitor.domain.health import assess_health
from meshcommon.health import LoopProgress


def _judge(**kw: object):
    progress = LoopProgress(started_at=0.0)
    progress.completed(now=100.0)
    args = dict(
        node_running=True,
        expected=10,
        connected=10,
        heard=10,
        bootstrap_age_s=1.5,
        refresh_s=2.0,
        refresh=progress,
        stuck_after_s=29.0,
        now=101.0,
    )
    args.update(kw)
    return assess_health(**args)  # type: ignore[arg-type]


def test_ok_then_each_degraded_view_is_named() -> None:
    assert _judge().status == "ok"
    stale = _judge(bootstrap_age_s=264.0)  # minutes old: far past 3 refresh periods
    assert (stale.status, stale.http_status, stale.reasons) == (
        "degraded",
        200,
        ["bootstrap_stale"],
    )
    assert _judge(connected=0).reasons == ["none_connected"]
    assert _judge(connected=0, heard=0).reasons == ["none_connected", "none_heard"]
    assert _judge(expected=0, connected=0, heard=0).reasons == ["no_expected_peers"]


def test_a_stuck_refresh_loop_or_a_dead_node_is_failing() -> None:
    stuck = _judge(now=130.0)
    assert (stuck.status, stuck.http_status, stuck.reasons) == ("failing", 503, ["refresh_stuck"])
    assert _judge(node_running=False).reasons == ["node_down"]
