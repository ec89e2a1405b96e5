"""WHOOSH's health: degraded while its list is not the mesh, failing when discovery is stuck."""

from __future__ import annotations

from meshcommon.health import LoopProgress
from whoosh.domain.health import assess_health


def _judge(**kw: object):
    progress = LoopProgress(started_at=0.0)
    progress.completed(now=100.0)
    args = dict(
        discovery_error=None,
        rounds_done=True,
        discovered=10,
        healthy=10,
        progress=progress,
        stuck_after_s=59.0,
        now=110.0,
    )
    args.update(kw)
    return assess_health(**args)  # type: ignore[arg-type]


def test_each_degraded_state_is_named_and_stays_200() -> None:
    assert _judge().status == "ok"
    failing_dns = _judge(discovery_error="DNS lookup failed", discovered=10, healthy=9)
    assert failing_dns.reasons == ["discovery_failing"] and failing_dns.http_status == 200
    assert _judge(healthy=0).reasons == ["all_agents_unreachable"]
    assert _judge(discovered=0, healthy=0).reasons == ["no_agents_discovered"]
    assert _judge(rounds_done=False, discovered=0, healthy=0).status == "ok"  # starting


def test_a_discovery_loop_without_a_round_for_too_long_is_failing() -> None:
    stuck = _judge(now=160.0)
    assert (stuck.status, stuck.http_status, stuck.reasons) == ("failing", 503, ["discovery_stuck"])
