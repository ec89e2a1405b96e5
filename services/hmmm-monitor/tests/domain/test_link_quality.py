"""The RTT estimate of the monitor's own link to a peer."""

from __future__ import annotations

import pytest

from hmmm_monitor.domain.link_quality import ewma


def test_ewma() -> None:
    assert ewma(None, 10.0) == 10.0  # the first sample is the estimate
    assert ewma(10.0, 20.0, 0.2) == pytest.approx(12.0)
    value: float | None = None
    for _ in range(100):
        value = ewma(value, 5.0)
    assert value == pytest.approx(5.0)
    spiky = ewma(ewma(4.0, 100.0), 4.0)  # one outlier moves it, but not to the outlier
    assert 4.0 < spiky < 30.0
