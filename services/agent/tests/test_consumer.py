import logging

from chorus_agent.consumer import GossipConsumer
from chorus_agent.metrics import AgentMetrics
from meshcommon import topics
from meshcommon.p2p import ReceivedMessage


def _msg(data: bytes, sender: str = "12D3KooWsender") -> ReceivedMessage:
    return ReceivedMessage(topics.COORDINATION, sender, data, "01", 1000.0)


def _value(metrics: AgentMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_bad_gossip_is_counted_by_reason_and_logged_once(caplog) -> None:
    metrics = AgentMetrics()
    consumer = GossipConsumer(metrics, max_bytes=1024)
    with caplog.at_level(logging.WARNING):
        consumer(_msg(b"{not json"))
        consumer(_msg(b"{not json either"))
        consumer(_msg(b"x" * 2048, sender="other"))
        consumer(_msg(b"[1, 2]", sender="third"))
        consumer(_msg(b'{"type":"availability","node_id":"n"}'))
    assert _value(metrics, "chorus_agent_messages_rejected_total", reason="invalid_json") == 2
    assert _value(metrics, "chorus_agent_messages_rejected_total", reason="oversized") == 1
    assert _value(metrics, "chorus_agent_messages_rejected_total", reason="not_a_json_object") == 1
    assert (
        _value(
            metrics,
            "chorus_agent_messages_received_total",
            topic=topics.COORDINATION,
            type="availability",
        )
        == 1
    )
    warnings = [r.getMessage() for r in caplog.records if "rejected gossip" in r.getMessage()]
    assert len(warnings) == 3  # the repeat from the same sender is rate-limited
    assert any("oversized" in w and "2048 bytes" in w for w in warnings)
    assert consumer.last_heard == {"12D3KooWsender": 1000.0}
