"""Prometheus metrics on a registry owned by one app (tests build many apps per process)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Label for senders outside the bootstrap list: anyone with a key can sign gossip, so
# per-sender labels for strangers would let a flood of forged origins grow /metrics.
OTHER_PEERS = "other"


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
        # Connection quality. Per-peer labels: one series per expected/connected peer,
        # fine up to a few hundred peers; beyond that, drop the peer_id label and rely on
        # the histogram plus /api/v1/peers for the per-peer view.
        self.peer_rtt = Gauge(
            "hmmm_peer_rtt_seconds",
            "Last libp2p ping round-trip time to each connected peer",
            ["peer_id"],
            registry=r,
        )
        self.ping_rtt = Histogram(
            "hmmm_ping_rtt_seconds",
            "libp2p ping round-trip times, all peers",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.ping_failures = Counter(
            "hmmm_ping_failures", "Pings that failed or timed out", registry=r
        )
        self.messages_lost = Counter(
            "hmmm_messages_lost",
            "Messages missing from a sender's seqno sequence (lost before reaching the "
            "monitor); senders outside the bootstrap list are summed as peer_id=other",
            ["peer_id"],
            registry=r,
        )
        self.outbound_dropped = Counter(
            "hmmm_outbound_dropped_total",
            "Messages GossipSub dropped because a peer's outbound queue was full",
            ["reason"],
            registry=r,
        )
        self._dropped_seen: dict[str, int] = {}
        self._outbound_seen: dict[str, int] = {}
        self._lost_seen: dict[str, int] = {}
        self._rtt_peers: set[str] = set()

    def sync_dropped(self, dropped_by_topic: Mapping[str, int]) -> None:
        """MeshNode keeps its own drop counter; mirror its growth into ours."""
        for topic, total in dropped_by_topic.items():
            delta = total - self._dropped_seen.get(topic, 0)
            if delta > 0:
                self.messages_dropped.labels(topic=topic).inc(delta)
            self._dropped_seen[topic] = total

    def sync_outbound_dropped(self, by_reason: Mapping[str, int]) -> None:
        for reason, total in by_reason.items():
            delta = total - self._outbound_seen.get(reason, 0)
            if delta > 0:
                self.outbound_dropped.labels(reason=reason).inc(delta)
            self._outbound_seen[reason] = total

    def observe_rtt(self, peer_id: str, rtt_s: float) -> None:
        self.peer_rtt.labels(peer_id=peer_id).set(rtt_s)
        self._rtt_peers.add(peer_id)
        self.ping_rtt.observe(rtt_s)

    def prune_peer_rtt(self, keep: set[str]) -> None:
        for peer_id in self._rtt_peers - keep:
            self.peer_rtt.remove(peer_id)
        self._rtt_peers &= keep

    def sync_lost(self, lost_by_sender: Mapping[str, int], expected: set[str]) -> None:
        """Mirror the growth of the store's per-sender loss into the counter. Counters
        only go up: a message counted lost that later arrives late stays counted here
        (the API's ``messages_lost`` is net of late arrivals)."""
        totals: dict[str, int] = {}
        for sender, lost in lost_by_sender.items():
            key = sender if sender in expected else OTHER_PEERS
            totals[key] = totals.get(key, 0) + lost
        for key, total in totals.items():
            delta = total - self._lost_seen.get(key, 0)
            if delta > 0:
                self.messages_lost.labels(peer_id=key).inc(delta)
            self._lost_seen[key] = total
