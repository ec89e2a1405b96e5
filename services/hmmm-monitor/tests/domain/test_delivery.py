"""Message loss (seqno gaps) and delivery latency, and how the store and the consumer
carry them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from hmmm_monitor.consumer import GossipConsumer
from hmmm_monitor.domain.delivery import (
    DUPLICATE,
    FIRST,
    GAP,
    LATE,
    NEXT,
    RESTART,
    SEQNO_MAX_GAP,
    SeqnoTracker,
)
from hmmm_monitor.domain.store import MessageStore
from hmmm_monitor.metrics import MonitorMetrics
from meshcommon.models import MonitorLogRecord
from meshcommon.p2p.types import ReceivedMessage
from meshcommon.topics import COORDINATION

START = int(time.time())  # py-libp2p starts each publisher's counter at the unix time
# Every test message is received right after START, whenever the test runs: with the wall
# clock, a run SEQNO_CLOCK_SLACK_S after import saw seqnos START+n as re-seeded (a restart).
RECEIVED_AT = START + 1.0
RECEIVED_AT_UTC = datetime.fromtimestamp(RECEIVED_AT, UTC)


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


# -- store, consumer, metrics ----------------------------------------------------------------
def received(sender: str, seqno: int, body: dict[str, object] | bytes) -> ReceivedMessage:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ReceivedMessage(COORDINATION, sender, data, seqno.to_bytes(8, "big").hex(), RECEIVED_AT)


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
    consumer = GossipConsumer(store, log_to_stdout=False)
    sent = RECEIVED_AT_UTC - timedelta(milliseconds=250)
    for s in (1, 2, 3):
        consumer(received("alice", START + s, availability(timestamp=sent.isoformat())))
    consumer(received("alice", START + 4, b"{not json"))  # rejected, but it did arrive
    consumer(received("alice", START + 7, availability()))  # 5, 6 lost; no timestamp
    consumer(received("bob", START + 1, availability()))
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
    assert store.gaps_total() == 2


def test_latency_median_uses_the_last_samples_only() -> None:
    store = MessageStore()
    consumer = GossipConsumer(store, log_to_stdout=False)
    old = RECEIVED_AT_UTC - timedelta(hours=1)  # a badly skewed clock, later fixed
    for s in range(1, 51):
        consumer(received("c", START + s, availability(timestamp=old.isoformat())))
    for s in range(51, 101):
        consumer(received("c", START + s, availability(timestamp=RECEIVED_AT_UTC.isoformat())))
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


def test_lost_counter_only_grows_and_has_no_per_sender_labels() -> None:
    """A late arrival makes the API's per-sender loss go down; the Prometheus counter
    counts what was ever missing and never goes back. No per-sender label: any key can
    sign gossip, so a sender label would let strangers grow /metrics without bound."""
    store = MessageStore()
    metrics = MonitorMetrics()
    metrics.export_message_gaps(store.gaps_total)
    consumer = GossipConsumer(store, metrics, log_to_stdout=False)
    for s in (1, 4):  # 2 and 3 missing
        consumer(received("alice", START + s, availability()))
    for s in (1, 3):  # 2 missing
        consumer(received(f"mallory-{s}", START + s, availability()))
        consumer(received("mallory", START + s, availability()))
    get = metrics.registry.get_sample_value
    assert get("hmmm_messages_lost_total") == 3
    consumer(received("alice", START + 2, availability()))  # late, not lost after all
    assert store.delivery()["alice"].lost == 1
    assert get("hmmm_messages_lost_total") == 3  # a counter never goes down
    assert get("hmmm_messages_lost_total", {"peer_id": "alice"}) is None


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
