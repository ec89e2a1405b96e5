"""Prometheus metrics on a registry owned by one app (tests build many apps per process)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages_received = Counter(
            "hmmm_messages_received", "Valid gossip messages", ["topic", "type"], registry=r
        )
        self.messages_rejected = Counter(
            "hmmm_messages_rejected", "Gossip messages rejected, by reason", ["reason"], registry=r
        )
        self.messages_dropped = Counter(
            "hmmm_messages_dropped",
            "Messages lost because the subscription queue was full",
            ["topic"],
            registry=r,
        )
        self.peers_expected = Gauge(
            "hmmm_peers_expected", "Peers in the bootstrap list", registry=r
        )
        self.peers_connected = Gauge(
            "hmmm_peers_connected", "Expected peers with a direct connection", registry=r
        )
        self.peers_heard = Gauge(
            "hmmm_peers_heard", "Expected peers heard within heard_window_s", registry=r
        )
        self.dial_failures = Counter(
            "hmmm_dial_failures", "Failed dials by root-cause reason", ["reason"], registry=r
        )
        self.bootstrap_fetch = Counter(
            "hmmm_bootstrap_fetch", "Bootstrap list fetches by result", ["result"], registry=r
        )
        self.bootstrap_age = Gauge(
            "hmmm_bootstrap_age_seconds", "Age of the bootstrap list in use", registry=r
        )
        self._dropped_seen: dict[str, int] = {}

    def sync_dropped(self, dropped_by_topic: Mapping[str, int]) -> None:
        """MeshNode keeps its own drop counter; mirror its growth into ours."""
        for topic, total in dropped_by_topic.items():
            delta = total - self._dropped_seen.get(topic, 0)
            if delta > 0:
                self.messages_dropped.labels(topic=topic).inc(delta)
            self._dropped_seen[topic] = total
