"""The soak's verdict on a capped store (no processes: samples made up here). A ramp while
the cap fills is not growth; growth once it is full is; the RSS bound is idle + cap +
allowance whatever the soak's length."""

from __future__ import annotations

import pytest

from .soak import CAP_ALLOWANCE_MIB, SoakRecorder

pytestmark = pytest.mark.integration

CAP = 16.0


def recorder(rss_and_kept: list[tuple[float, float]], step_s: float = 30.0) -> SoakRecorder:
    rec = SoakRecorder({"hmmm-monitor": "http://unused"})
    rec.samples["hmmm-monitor"] = [
        (i * step_s, {"rss_mib": rss, "kept_mib": kept, "cap_mib": CAP})
        for i, (rss, kept) in enumerate(rss_and_kept)
    ]
    return rec


def rss_verdict(rec: SoakRecorder):
    return [v for v in rec.verdicts() if v.column == "rss_mib"]


@pytest.mark.parametrize("flat_samples", [3, 10, 60])  # a short soak, make soak, a long one
def test_filling_the_cap_is_not_growth_whatever_the_length(flat_samples: int) -> None:
    filling = [(100.0 + 4 * i, 2.0 * i) for i in range(9)]  # +32 MiB while kept 0 -> 16
    full = [(132.0, CAP)] * flat_samples
    rec = recorder(filling + full)
    (verdict,) = rss_verdict(rec)
    assert not verdict.grows and verdict.first == verdict.last == 132.0
    (bound,) = rec.bounds({"hmmm-monitor": 100.0})
    assert bound.allowed == 100.0 + CAP + CAP_ALLOWANCE_MIB and not bound.exceeded


def test_growth_once_the_cap_is_full_is_judged() -> None:
    full = [(120.0 + 2 * i, CAP) for i in range(30)]  # +58 MiB with the cap full: a leak
    (verdict,) = rss_verdict(recorder(full))
    assert verdict.grows


def test_a_cap_never_full_gives_no_trend_but_the_bound_still_holds() -> None:
    rec = recorder([(100.0 + i, 0.5) for i in range(20)])
    assert rss_verdict(rec) == []
    (bound,) = rec.bounds({"hmmm-monitor": 100.0})
    assert not bound.exceeded
    (over,) = recorder([(100.0, 0.5), (150.0, 0.5)]).bounds({"hmmm-monitor": 100.0})
    assert over.exceeded and "OVER" in over.line()
