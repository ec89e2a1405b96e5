"""The ping prober: bounded, in the background, never blocking a refresh round."""

from __future__ import annotations

import asyncio
import time

import pytest

from hmmm_monitor.metrics import MonitorMetrics
from hmmm_monitor.workers.link_prober import LinkProber
from meshcommon.waiting import wait_until_async


class FakePinger:
    def __init__(self, rtts: dict[str, float], slow: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.rtts = rtts
        self.slow = set(slow)
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: list[str] = []

    async def ping(self, peer_id: str, timeout_s: float | None = None) -> float:
        self.calls.append(peer_id)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if peer_id in self.slow:
                await asyncio.sleep(30)
            await asyncio.sleep(0.01)
            if peer_id not in self.rtts:
                raise RuntimeError(f"ping {peer_id}: not_connected: no open connection")
            return self.rtts[peer_id]
        finally:
            self.in_flight -= 1


@pytest.mark.anyio
async def test_prober_records_rtt_ewma_and_failures() -> None:
    metrics = MonitorMetrics()
    pinger = FakePinger({f"p{i}": 2.0 + i for i in range(10)})
    prober = LinkProber(pinger, concurrency=3, timeout_s=1.0, alpha=0.5, metrics=metrics)
    peers = [f"p{i}" for i in range(10)] + ["gone"]
    await prober.sweep(peers)
    assert pinger.max_in_flight <= 3  # bounded concurrency
    assert prober.get("p1").rtt_ms == 3.0 and prober.get("p1").rtt_ewma_ms == 3.0
    gone = prober.get("gone")
    assert (
        gone.rtt_ms is None
        and gone.ping_failures == 1
        and "not_connected" in str(gone.last_ping_error)
    )
    pinger.rtts["p1"] = 5.0
    await prober.sweep(peers)
    p1 = prober.get("p1")
    assert p1.rtt_ms == 5.0 and p1.rtt_ewma_ms == pytest.approx(4.0) and p1.pings == 2
    doc = p1.to_dict()
    assert doc["rtt_ms"] == 5.0 and doc["ping_failures"] == 0
    assert metrics.registry.get_sample_value("hmmm_peer_rtt_seconds", {"peer_id": "p1"}) == 0.005
    assert metrics.registry.get_sample_value("hmmm_ping_failures_total") == 2
    assert metrics.registry.get_sample_value("hmmm_ping_rtt_seconds_count") == 20
    # A peer that stops answering stops reporting an RTT series.
    del pinger.rtts["p1"]
    await prober.sweep(peers)
    assert metrics.registry.get_sample_value("hmmm_peer_rtt_seconds", {"peer_id": "p1"}) is None
    assert prober.get("p1").rtt_ms == 5.0  # the API keeps the last value, with the failure
    assert prober.get("p1").ping_failures == 1
    prober.prune({"p0"})
    assert set(prober.links) == {"p0"}
    assert prober.get("unknown").rtt_ms is None


@pytest.mark.anyio
async def test_slow_peer_times_out_without_blocking_the_caller() -> None:
    pinger = FakePinger({"fast": 1.0, "slow": 1.0}, slow={"slow"})
    prober = LinkProber(pinger, concurrency=2, timeout_s=0.3)
    started = time.monotonic()
    assert prober.start_sweep(["slow", "fast"])  # returns at once
    assert time.monotonic() - started < 0.1
    assert not prober.start_sweep(["fast"])  # the previous sweep is still running
    assert prober.skipped_sweeps == 1

    async def sweeps() -> int:
        return prober.sweeps

    await wait_until_async(sweeps, lambda n: n == 1, within_s=5, what="the sweep to finish")
    assert prober.get("fast").rtt_ms == 1.0
    slow = prober.get("slow")
    assert slow.ping_failures == 1 and "timeout" in str(slow.last_ping_error)
    assert prober.start_sweep(["fast"])
    await prober.aclose()


@pytest.mark.anyio
async def test_aclose_cancels_a_running_sweep() -> None:
    prober = LinkProber(FakePinger({}, slow={"slow"}), timeout_s=30)
    prober.start_sweep(["slow"])
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await prober.aclose()
    assert time.monotonic() - started < 1
