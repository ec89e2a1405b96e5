from __future__ import annotations

import io
import json
import threading
import time
from datetime import UTC, datetime

from hmmm_monitor.consumer import GossipConsumer
from hmmm_monitor.domain.store import STORED_OVERHEAD_BYTES, MessageStore
from hmmm_monitor.metrics import MonitorMetrics
from meshcommon import topics
from meshcommon.gossip import REASON_INVALID_JSON, REASON_NOT_OBJECT, REASON_OVERSIZED
from meshcommon.p2p.types import ReceivedMessage

A = "12D3KooWAgentA"
B = "12D3KooWAgentB"


def msg(data: bytes, sender: str = A, topic: str = topics.COORDINATION, at: float | None = None):
    return ReceivedMessage(topic, sender, data, "01", at if at is not None else time.time())


def make(**kw):
    store = MessageStore(keep=kw.pop("keep", 100))
    metrics = MonitorMetrics()
    out = io.StringIO()
    consumer = GossipConsumer(store, metrics, stdout=out, **kw)
    return store, metrics, consumer, out


def sample(metrics: MonitorMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_valid_message_is_stored_counted_and_logged_as_one_json_line() -> None:
    store, metrics, consumer, out = make()
    consumer(msg(b'{"type":"availability","node_id":"x","status":"ready"}'))
    line = json.loads(out.getvalue())
    assert set(line) >= {"timestamp", "topic", "from", "type", "payload"}
    assert line["topic"] == topics.COORDINATION and line["from"] == A
    assert line["type"] == "availability" and line["payload"]["node_id"] == "x"
    assert out.getvalue().count("\n") == 1
    assert store.senders()[A].count == 1
    labels = {"topic": topics.COORDINATION, "type": "availability"}
    assert sample(metrics, "hmmm_messages_received_total", **labels) == 1


def test_invalid_messages_are_counted_by_reason_and_never_raise(caplog) -> None:
    store, metrics, consumer, out = make(max_bytes=1000)
    consumer(msg(b"{not json"))
    consumer(msg(b"\xff\xfe"))
    consumer(msg(b"[1, 2]"))
    consumer(msg(b"x" * 1001))
    assert store.rejected_counts() == {
        REASON_INVALID_JSON: 2,
        REASON_NOT_OBJECT: 1,
        REASON_OVERSIZED: 1,
    }
    assert sample(metrics, "hmmm_messages_rejected_total", reason=REASON_OVERSIZED) == 1
    assert out.getvalue() == ""  # rejected messages are not part of the message log
    assert store.senders()[A].count == 0  # not "heard"
    assert store.heard_since(0) == set()


def test_invalid_log_is_rate_limited_per_sender_and_reason(caplog) -> None:
    now = [100.0]
    _, _, consumer, _ = make(invalid_log_interval_s=10, clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="hmmm_monitor.consumer"):
        for _ in range(50):
            consumer(msg(b"garbage", sender=A))
        consumer(msg(b"garbage", sender=B))
        consumer(msg(b"[1]", sender=A))  # another reason from A is still reported
        now[0] += 11
        consumer(msg(b"garbage", sender=A))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert f"from={A}" in lines[0] and "reason=invalid_json" in lines[0]
    assert f"topic={topics.COORDINATION}" in lines[0]
    assert f"from={A}" in lines[2] and "reason=not_a_json_object" in lines[2]
    assert "49 more like it suppressed" in lines[3]


def test_availability_feeds_topology_and_bad_availability_is_still_logged() -> None:
    store, _, consumer, out = make()
    good = {
        "type": "availability",
        "node_id": A,
        "available_for_work": True,
        "current_tasks": 0,
        "max_tasks": 3,
        "last_activity": "2025-10-12T00:00:00Z",
        "status": "ready",
        "peers": [B],
    }
    consumer(msg(json.dumps(good).encode()))
    consumer(msg(b'{"type":"availability","node_id":"broken"}', sender=B))
    assert store.availability()[A].message.peers == [B]
    assert B not in store.availability()
    assert out.getvalue().count("\n") == 2


def test_store_ring_buffer_filters_and_orders_newest_first() -> None:
    store, _, consumer, _ = make(keep=3, log_to_stdout=False)
    for i in range(5):
        sender = A if i % 2 else B
        consumer(msg(json.dumps({"type": f"t{i}"}).encode(), sender=sender, at=1000.0 + i))
    recent = store.recent(limit=10)
    assert [m.record.type for m in recent] == ["t4", "t3", "t2"]
    assert [m.record.type for m in store.recent(sender=A)] == ["t3"]
    assert [m.record.type for m in store.recent(type_="t2")] == ["t2"]
    assert store.recent(topic="nope") == []
    assert store.senders()[B].count == 3  # stats outlive the ring buffer
    assert store.heard_since(1003.5) == {B}


def test_store_is_thread_safe_under_concurrent_writers_and_readers() -> None:
    store, _, consumer, _ = make(keep=50, log_to_stdout=False)

    def writer(sender: str) -> None:
        for _ in range(500):
            consumer(msg(b'{"type":"x"}', sender=sender))

    threads = [threading.Thread(target=writer, args=(f"P{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for _ in range(200):
        store.recent(limit=10)
        store.senders()
    for t in threads:
        t.join()
    assert store.total == 2000
    assert sum(s.count for s in store.senders().values()) == 2000


def test_per_sender_figures_are_capped_and_the_least_recent_sender_goes() -> None:
    from hmmm_monitor.domain.store import MessageStore
    from meshcommon.models import MonitorLogRecord

    store = MessageStore(keep=10, max_senders=3)
    for i, sender in enumerate(["real", "s1", "s2", "s3", "real", "s4"]):
        record = MonitorLogRecord(
            timestamp=datetime.fromtimestamp(1000 + i, UTC),
            topic="t",
            from_=sender,
            type="x",
            seqno=f"{i + 1:x}",
        )
        store.add(record, 1000.0 + i)
    store.reject("invalid_json", "s5", 1010.0, "ff")
    assert store.tracked_senders() == 3 and store.senders_forgotten == 4
    assert set(store.senders()) == {"real", "s4", "s5"}  # the recently heard stay
    assert set(store.delivery()) <= {"real", "s4", "s5"}
    # Who publishes where is kept for the tracked senders only (s5 sent nothing valid).
    assert store.topic_publishers(since=0) == {"t": {"real", "s4"}}
    assert store.topic_publishers(since=1004.5) == {"t": {"s4"}}


def test_kept_messages_are_bounded_in_bytes_so_big_ones_cannot_fill_the_memory() -> None:
    """A sender of near-budget messages holds as many bytes as one of small ones, no more."""
    store = MessageStore(keep=200, max_bytes=10_000)
    consumer = GossipConsumer(store, MonitorMetrics(), stdout=io.StringIO())
    big = json.dumps({"type": "availability", "multiaddrs": ["/ip4/x"] * 400}).encode()
    assert 3000 < len(big) < 5000
    for i in range(50):
        consumer(msg(big, sender=B, at=1000.0 + i))
    consumer(msg(b'{"type":"availability","node_id":"small"}', sender=A, at=2000.0))
    kept = store.recent(limit=5000)
    assert sum(m.size for m in kept) <= 10_000
    assert 2 <= len(kept) < 4 and kept[0].record.from_ == A  # the newest stay
    assert store.total == 51 and store.senders()[B].count == 50  # all counted still
    # Tiny messages count their overhead too: the byte cap bounds them as well...
    for i in range(500):
        consumer(msg(b'{"type":"availability"}', at=3000.0 + i))
    assert len(store.recent(limit=5000)) == 10_000 // (STORED_OVERHEAD_BYTES + 23)
    # ...and under a roomier cap they are kept up to the count, as before.
    roomy = MessageStore(keep=200, max_bytes=1_000_000)
    consumer = GossipConsumer(roomy, MonitorMetrics(), stdout=io.StringIO())
    for i in range(500):
        consumer(msg(b'{"type":"availability"}', at=3000.0 + i))
    assert len(roomy.recent(limit=5000)) == 200


def test_kept_messages_hold_their_payload_as_received_and_show_it_parsed() -> None:
    """Kept raw (a parsed 50 KB payload of 600 strings took 1.65 times its size); the API
    shows the payload as before."""
    store = MessageStore()
    consumer = GossipConsumer(store, MonitorMetrics(), stdout=io.StringIO())
    data = json.dumps({"type": "availability", "multiaddrs": ["/ip4/x"] * 3}).encode()
    consumer(msg(data, sender=B, at=1000.0))
    (kept,) = store.recent()
    assert kept.raw == data and kept.record.payload is None
    doc = kept.to_dict()
    assert doc["payload"] == {"type": "availability", "multiaddrs": ["/ip4/x"] * 3}
    assert doc["from"] == B and doc["received_at"] == 1000.0
    assert store.kept_bytes() == len(data) + STORED_OVERHEAD_BYTES


def test_messages_the_validator_rejected_still_name_their_sender() -> None:
    from meshcommon.gossip import REASON_NODE_ID_NOT_SIGNER
    from meshcommon.p2p.types import RejectedMessage

    store, metrics, consumer, out = make()
    for _ in range(2):
        consumer.reject(
            RejectedMessage(
                topics.COORDINATION, B, B, REASON_NODE_ID_NOT_SIGNER, "node_id x", "02", 1.0
            )
        )
    assert store.rejected_counts() == {REASON_NODE_ID_NOT_SIGNER: 2}
    assert store.senders()[B].rejected == 2
    assert sample(metrics, "hmmm_messages_rejected_total", reason=REASON_NODE_ID_NOT_SIGNER) == 2
    assert out.getvalue() == ""  # not a received message: nothing in the JSON-lines log


def test_an_availability_the_node_parsed_is_used_as_is() -> None:
    from meshcommon.gossip import validate

    data = json.dumps(
        {
            "type": "availability",
            "node_id": A,
            "available_for_work": True,
            "current_tasks": 0,
            "max_tasks": 1,
            "last_activity": "2026-01-01T00:00:00Z",
            "status": "available",
            "peers": [B],
        }
    ).encode()
    decoded = validate(data, A)
    store, _, consumer, _ = make()
    consumer(ReceivedMessage(topics.COORDINATION, A, data, "01", time.time(), decoded))
    assert store.availability()[A].message is decoded.model  # type: ignore[union-attr]


def test_a_neighbours_report_is_validated_and_a_bad_one_counted_by_reason(caplog) -> None:
    peer = "12D3KooWBChRxNoL2XZR2ys1MTyaBFuKgbWwE5LmUoLAWRF3iqHh"

    def availability(neighbours: object) -> bytes:
        return json.dumps(
            {
                "type": "availability",
                "node_id": A,
                "available_for_work": True,
                "current_tasks": 0,
                "max_tasks": 1,
                "last_activity": "2026-01-01T00:00:00Z",
                "status": "available",
                "peers": [peer],
                "neighbours": neighbours,
            }
        ).encode()

    store, metrics, consumer, _ = make()
    consumer(msg(availability([{"p": peer, "av": "js-libp2p/2.9.0", "t": ["chorus/x"]}])))
    report = store.availability()[A]
    assert report.neighbours[0].agent_version == "js-libp2p/2.9.0"
    assert report.message.neighbours is None  # the raw report is not kept
    assert sample(metrics, "hmmm_neighbour_reports_total", result="ok") == 1
    for _ in range(3):
        consumer(msg(availability([{"p": peer, "t": ["x" * 1000]}])))
    report = store.availability()[A]
    # The broadcast still counts (the agent is heard, its peers drawn); the report not.
    assert report.neighbours == () and report.neighbours_rejected == "over_budget"
    assert report.message.peers == [peer]
    assert sample(metrics, "hmmm_neighbour_reports_total", result="over_budget") == 3
    refused = [r for r in caplog.records if "refused neighbours report" in r.getMessage()]
    assert len(refused) == 1  # logged once per sender and reason
