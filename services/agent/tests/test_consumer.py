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
