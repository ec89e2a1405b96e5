import logging

from chorus_agent.consumer import GossipConsumer
from chorus_agent.metrics import AgentMetrics
from meshcommon import topics
from meshcommon.p2p import ReceivedMessage


def _msg(data: bytes, sender: str = "12D3KooWsender") -> ReceivedMessage:
    return ReceivedMessage(topics.COORDINATION, sender, data, "01", 1000.0)


def _value(metrics: AgentMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _rejected(metrics: AgentMetrics, reason: str) -> float:
    return _value(
        metrics, "chorus_agent_messages_rejected_total", topic=topics.COORDINATION, reason=reason
    )


def test_bad_gossip_is_counted_by_reason_and_logged_once(caplog) -> None:
    metrics = AgentMetrics()
    consumer = GossipConsumer(metrics, max_bytes=1024)
    with caplog.at_level(logging.WARNING):
        consumer(_msg(b"{not json"))
        consumer(_msg(b"{not json either"))
        consumer(_msg(b"x" * 2048, sender="other"))
        consumer(_msg(b"[1, 2]", sender="third"))
        consumer(_msg(b'{"type":"availability","node_id":"n"}'))
    assert _rejected(metrics, "invalid_json") == 2
    assert _rejected(metrics, "oversized") == 1
    assert _rejected(metrics, "not_a_json_object") == 1
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


def _availability(node_id: str, addrs: list[str]) -> bytes:
    import json

    return json.dumps(
        {"type": "availability", "node_id": node_id, "name": "agent-9", "multiaddrs": addrs}
    ).encode()


def test_agents_learn_peers_from_availability_gossip_but_not_spoofed_ones() -> None:
    from chorus_agent.domain.peers import PeerBook
    from meshcommon.multiaddr_policy import MultiaddrPolicy

    signer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
    victim = "12D3KooWMYndRNDDW5C4RLTbQKPn19Xg2vjA9Wtq3RCDdcCr98HF"
    book = PeerBook(MultiaddrPolicy())
    consumer = GossipConsumer(AgentMetrics(), max_bytes=4096, learn=book.learn)
    good = f"/ip4/10.0.13.9/tcp/9000/p2p/{signer}"
    consumer(
        _msg(_availability(signer, [good, f"/ip4/127.0.0.1/tcp/9000/p2p/{signer}"]), sender=signer)
    )
    # Someone announcing addresses for another peer ID is ignored.
    consumer(_msg(_availability(victim, [f"/ip4/10.0.13.66/tcp/9000/p2p/{victim}"]), sender=signer))
    peers = book.peers()
    assert [(p.peer_id, p.multiaddrs, p.name) for p in peers] == [(signer, [good], "agent-9")]


def test_rejections_by_the_validator_are_counted_by_topic_and_reason() -> None:
    from meshcommon.p2p.types import RejectedMessage

    metrics = AgentMetrics()
    consumer = GossipConsumer(metrics, max_bytes=1024)
    for reason in ("node_id_not_signer", "node_id_not_signer", "invalid_schema"):
        consumer.reject(
            RejectedMessage(topics.COORDINATION, "s", "s", reason, "detail", "01", 1000.0)
        )
    assert _rejected(metrics, "node_id_not_signer") == 2
    assert _rejected(metrics, "invalid_schema") == 1
    # Every topic and reason exists from the start: a first rejection is an increase.
    assert (
        _value(
            metrics,
            "chorus_agent_messages_rejected_total",
            topic=topics.META_DISCUSSION,
            reason="oversized",
        )
        == 0
    )
    assert metrics.registry.get_sample_value("chorus_agent_gossip_graylisted_peers") is None


def test_a_message_the_node_parsed_is_not_parsed_again(monkeypatch) -> None:
    import chorus_agent.consumer as module
    from meshcommon.gossip import DecodedGossip, validate

    data = b'{"type":"availability","node_id":"12D3KooWsender","available_for_work":true,'
    data += b'"current_tasks":0,"max_tasks":1,"last_activity":"2026-01-01T00:00:00Z",'
    data += b'"status":"available"}'
    decoded = validate(data, "12D3KooWsender")
    assert isinstance(decoded, DecodedGossip)
    monkeypatch.setattr(module, "decode", lambda *a: (_ for _ in ()).throw(AssertionError))
    metrics = AgentMetrics()
    consumer = GossipConsumer(metrics, max_bytes=4096)
    msg = ReceivedMessage(topics.COORDINATION, "12D3KooWsender", data, "01", 1.0, decoded)
    consumer(msg)
    assert (
        _value(
            metrics,
            "chorus_agent_messages_received_total",
            topic=topics.COORDINATION,
            type="availability",
        )
        == 1
    )
