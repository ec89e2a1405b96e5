"""Prometheus metrics of one agent (a registry per app, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.broadcasts = Counter(
            "chorus_agent_broadcasts_total", "Availability broadcasts", ["result"], registry=r
        )
        self.received = Counter(
            "chorus_agent_messages_received_total",
            "Valid gossip messages received",
            ["topic", "type"],
            registry=r,
        )
        self.rejected = Counter(
            "chorus_agent_messages_rejected_total",
            "Gossip messages rejected",
            ["reason"],
            registry=r,
        )
        self.dials = Counter("chorus_agent_dials_total", "Peer dials", ["result"], registry=r)
        self.dial_failures = Counter(
            "chorus_agent_dial_failures_total",
            "Failed dial attempts by root cause",
            ["reason"],
            registry=r,
        )
        self.bootstrap_fetch = Counter(
            "chorus_agent_bootstrap_fetch_total", "WHOOSH bootstrap fetches", ["result"], registry=r
        )
        self.connected_peers = Gauge("chorus_agent_connected_peers", "Connected peers", registry=r)
        self.dropped = Gauge(
            "chorus_agent_subscription_dropped",
            "Messages dropped because a subscription queue was full",
            ["topic"],
            registry=r,
        )
        self.outbound_dropped = Gauge(
            "chorus_agent_outbound_dropped",
            "Messages GossipSub dropped because a peer's outbound queue was full",
            ["reason"],
            registry=r,
        )
