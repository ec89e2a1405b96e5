"""Connection quality without libp2p: seqno gap accounting, EWMA, the ping prober, and
how the store, consumer and metrics carry them."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from hmmm_monitor.consumer import MessageConsumer
from hmmm_monitor.metrics import MonitorMetrics
from hmmm_monitor.quality import (
    DUPLICATE,
    FIRST,
    GAP,
    LATE,
    NEXT,
    RESTART,
    SEQNO_MAX_GAP,
    LinkProber,
    SeqnoTracker,
    ewma,
)
from hmmm_monitor.store import MessageStore
from meshcommon.models import MonitorLogRecord
from meshcommon.p2p.node import ReceivedMessage
from meshcommon.topics import COORDINATION

from .conftest import wait_for

START = int(time.time())  # py-libp2p starts each publisher's counter at the unix time


def track(*seqnos: int) -> tuple[SeqnoTracker, list[str]]:
    t = SeqnoTracker()
    return t, [t.observe(s) for s in seqnos]


# -- seqno gap accounting ------------------------------------------------------------------
def test_contiguous_sequence_is_lossless() -> None:
    t, kinds = track(*range(START + 1, START + 101))
    assert kinds == [FIRST] + [NEXT] * 99
    assert (t.received, t.lost, t.duplicates, t.restarts) == (100, 0, 0, 0)
    assert t.delivery_ratio == 1.0


def test_no_messages_no_ratio() -> None:
    assert SeqnoTracker().delivery_ratio is None


def test_gap_counts_the_missing_messages() -> None:
    t, kinds = track(START + 1, START + 2, START + 6, START + 7)  # 3, 4, 5 never came
    assert kinds == [FIRST, NEXT, GAP, NEXT]
    assert (t.received, t.lost) == (4, 3)
    assert t.delivery_ratio == pytest.approx(4 / 7)


def test_first_message_seen_is_the_baseline() -> None:
    # The monitor joined late: what the publisher sent before is not "lost".
    t, _ = track(START + 500, START + 501)
    assert (t.received, t.lost) == (2, 0)


def test_duplicate_is_not_received_twice() -> None:
    t, kinds = track(START + 1, START + 2, START + 2, START + 1, START + 3)
    assert kinds == [FIRST, NEXT, DUPLICATE, DUPLICATE, NEXT]
    assert (t.received, t.lost, t.duplicates) == (3, 0, 2)
    assert t.delivery_ratio == 1.0


def test_late_arrival_fills_its_gap() -> None:
    # GossipSub can deliver a message late (IHAVE/IWANT) after a later one.
    t, kinds = track(START + 1, START + 3, START + 2, START + 2)
    assert kinds == [FIRST, GAP, LATE, DUPLICATE]
    assert (t.received, t.lost, t.late, t.duplicates) == (3, 0, 1, 1)
    assert t.delivery_ratio == 1.0


def test_backwards_jump_is_a_restart_not_loss() -> None:
    # A fast publisher restarts: its new counter (unix time) is below the old one.
    t, kinds = track(START + 5000, START + 5001, START + 10, START + 11)
    assert kinds == [FIRST, NEXT, RESTART, NEXT]
    assert (t.received, t.lost, t.restarts) == (4, 0, 1)
    assert t.delivery_ratio == 1.0


def test_backwards_below_epoch_start_is_a_restart() -> None:
    t, kinds = track(START + 100, START + 101, START + 99)
    assert kinds == [FIRST, NEXT, RESTART]
    assert t.lost == 0 and t.duplicates == 0


def test_big_forward_jump_is_a_restart_not_loss() -> None:
    # A slow publisher (every 30 s) restarts an hour later: its counter jumps ~3500.
    t, kinds = track(START + 1, START + 2, START + 3600, START + 3601)
    assert kinds == [FIRST, NEXT, RESTART, NEXT]
    assert (t.received, t.lost, t.restarts) == (4, 0, 1)


def test_max_gap_boundary() -> None:
    t, kinds = track(START, START + SEQNO_MAX_GAP)  # a jump of exactly 1000: 999 lost
    assert kinds == [FIRST, GAP] and t.lost == SEQNO_MAX_GAP - 1
    t, kinds = track(START, START + SEQNO_MAX_GAP + 1)
    assert kinds == [FIRST, RESTART] and t.lost == 0


def test_losses_accumulate_across_epochs() -> None:
    t, _ = track(START + 1, START + 3, START + 50_000, START + 50_002)
    assert (t.received, t.lost, t.restarts) == (4, 2, 1)
    assert t.delivery_ratio == pytest.approx(4 / 6)


# -- EWMA -----------------------------------------------------------------------------------
def test_ewma() -> None:
    assert ewma(None, 10.0) == 10.0  # the first sample is the estimate
    assert ewma(10.0, 20.0, 0.2) == pytest.approx(12.0)
    value: float | None = None
    for _ in range(100):
        value = ewma(value, 5.0)
    assert value == pytest.approx(5.0)
    spiky = ewma(ewma(4.0, 100.0), 4.0)  # one outlier moves it, but not to the outlier
    assert 4.0 < spiky < 30.0


# -- the prober -----------------------------------------------------------------------------
class FakePinger:
    def __init__(self, rtts: dict[str, float], slow: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.rtts = rtts
        self.slow = set(slow)
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: list[str] = []

    async def ping(self, peer_id: str) -> float:
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

    async def swept() -> bool:
        return prober.sweeps == 1

    await wait_for(swept, within_s=5)
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


# -- store, consumer, metrics ----------------------------------------------------------------
def received(sender: str, seqno: int, body: dict[str, object] | bytes) -> ReceivedMessage:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ReceivedMessage(COORDINATION, sender, data, seqno.to_bytes(8, "big").hex(), time.time())


def availability(**extra: object) -> dict[str, object]:
    return {
        "type": "availability",
        "node_id": "n",
        "available_for_work": True,
        "current_tasks": 0,
        "max_tasks": 1,
        "last_activity": datetime.now(UTC).isoformat(),
        "status": "ready",
        **extra,
    }


def test_consumer_feeds_loss_and_latency_per_sender() -> None:
    store = MessageStore()
    consumer = MessageConsumer(store, log_to_stdout=False)
    sent = datetime.now(UTC) - timedelta(milliseconds=250)
    for s in (1, 2, 3):
        consumer(received("alice", START + s, availability(timestamp=sent.isoformat())))
    consumer(received("alice", START + 4, b"{not json"))  # rejected, but it did arrive
    consumer(received("alice", START + 7, availability()))  # 5, 6 lost; no timestamp
    consumer(received("bob", START + 1, availability()))
    assert consumer.internal_errors == 0
    delivery = store.delivery()
    alice = delivery["alice"].to_dict()
    assert alice["messages_lost"] == 2
    assert alice["delivery_ratio"] == pytest.approx(5 / 7, abs=1e-4)
    assert alice["seqno"] == {"received": 5, "duplicates": 0, "late": 0, "restarts": 0}
    # Only the three messages carrying a sender timestamp give a latency sample.
    assert alice["delivery_latency_samples"] == 3
    assert 250 <= alice["delivery_latency_ms_median"] < 5000
    assert alice["delivery_latency_clock"] == "sender"
    bob = delivery["bob"].to_dict()
    assert bob["messages_lost"] == 0 and bob["delivery_ratio"] == 1.0
    assert bob["delivery_latency_ms_median"] is None
    assert store.lost_by_sender() == {"alice": 2, "bob": 0}


def test_latency_median_uses_the_last_samples_only() -> None:
    store = MessageStore()
    consumer = MessageConsumer(store, log_to_stdout=False)
    old = datetime.now(UTC) - timedelta(hours=1)  # a badly skewed clock, later fixed
    for s in range(1, 51):
        consumer(received("c", START + s, availability(timestamp=old.isoformat())))
    for s in range(51, 101):
        consumer(received("c", START + s, availability(timestamp=datetime.now(UTC).isoformat())))
    view = store.delivery()["c"]
    assert view.latency_samples == 50
    assert view.latency_ms_median is not None and view.latency_ms_median < 1000


def test_store_without_seqno_tracks_nothing() -> None:
    store = MessageStore()
    record = MonitorLogRecord(
        timestamp=datetime.now(UTC), topic=COORDINATION, from_="x", type="t", payload={}
    )
    store.add(record, time.time())  # seqno "" (e.g. a test record): ignored
    store.reject("invalid_json", "x", time.time(), "zz")  # not hex: ignored
    assert store.delivery() == {}


def test_lost_counter_mirrors_growth_and_bounds_labels() -> None:
    metrics = MonitorMetrics()
    expected = {"alice"}
    metrics.sync_lost({"alice": 2, "mallory1": 1, "mallory2": 4}, expected)
    metrics.sync_lost({"alice": 2, "mallory1": 1, "mallory2": 4}, expected)  # no growth
    metrics.sync_lost({"alice": 1, "mallory1": 1, "mallory2": 4}, expected)  # a late arrival
    metrics.sync_lost({"alice": 3, "mallory1": 1, "mallory2": 4}, expected)
    get = metrics.registry.get_sample_value
    assert get("hmmm_messages_lost_total", {"peer_id": "alice"}) == 4
    assert get("hmmm_messages_lost_total", {"peer_id": "other"}) == 5  # strangers summed
    assert get("hmmm_messages_lost_total", {"peer_id": "mallory1"}) is None


def test_slow_publisher_restarting_within_minutes_is_a_restart_not_loss() -> None:
    """An agent broadcasting every 30 s sent 10 messages since it started at T0, then
    restarted 5 minutes later: its new counter starts at the clock, ~290 above the old
    one. That is under SEQNO_MAX_GAP, but it is a new counter, not 290 lost messages."""
    t0 = 1_800_000_000
    t = SeqnoTracker()
    for i in range(1, 11):  # every 30 s: seqno t0+i received at t0 + 30*i
        t.observe(t0 + i, now=t0 + 30 * i)
    restart = t0 + 600
    assert t.observe(restart + 1, now=restart + 2) == RESTART
    assert t.observe(restart + 2, now=restart + 32) == NEXT
    assert (t.received, t.lost, t.restarts) == (12, 0, 1)


def test_fast_publisher_gap_near_the_clock_is_still_loss() -> None:
    """A publisher above 1 msg/s runs ahead of the clock: a hole in it is real loss."""
    t0 = 1_800_000_000
    t = SeqnoTracker()
    t.observe(t0 + 500, now=t0 + 100)  # 500 messages in 100 s
    assert t.observe(t0 + 503, now=t0 + 101) == GAP
    assert (t.lost, t.restarts) == (2, 0)
