"""Prometheus metrics on a registry owned by one monitor (tests build many per process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from meshcommon.metrics import TotalsCounter, export_runtime_metrics
from meshcommon.p2p.types import NodeCounters


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
        self.peers_expected = Gauge(
            "hmmm_peers_expected", "Peers in the bootstrap list", registry=r
        )
        self.peers_connected = Gauge(
            "hmmm_peers_connected", "Expected peers with a direct connection", registry=r
        )
        self.peers_heard = Gauge(
            "hmmm_peers_heard", "Expected peers heard within heard_window_s", registry=r
        )
        self.peers_left = Gauge(
            "hmmm_peers_left",
            "Peers that left on purpose (scale-down, drain, update): not expected any more",
            registry=r,
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
        # Connection quality. Per-peer labels: one series per connected peer, removed when
        # the peer stops answering pings (prune_peer_rtt).
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
        self._rtt_peers: set[str] = set()
        self.peer_id_conflicts = Gauge(
            "hmmm_peer_id_conflicts",
            "Expected peer IDs that several hosts claim (WHOOSH's conflict entries)",
            registry=r,
        )
        self.impostors = Gauge(
            "hmmm_impostors",
            "Hosts claiming a peer ID whose key the libp2p handshake proved they do not "
            "hold (named in /api/v1/peers)",
            registry=r,
        )
        self.trio_tasks = Gauge(
            "hmmm_trio_tasks", "Tasks alive in the libp2p node's trio thread", registry=r
        )
        export_runtime_metrics(r, "hmmm")

    def count_fetch(self, result: str) -> None:
        """One bootstrap fetch: ``ok`` or the failure kind."""
        self.bootstrap_fetch.labels(result=result).inc()

    def export_node_counters(self, counters: NodeCounters) -> None:
        """What the libp2p node counts in its own thread, read at scrape time."""
        r = self.registry
        TotalsCounter(
            "hmmm_messages_dropped",
            "Messages lost because the subscription queue was full",
            "topic",
            lambda: counters.dropped_by_topic,
            r,
        )
        TotalsCounter(
            "hmmm_outbound_dropped",
            "Messages GossipSub dropped because a peer's outbound queue was full",
            "reason",
            lambda: counters.outbound_dropped,
            r,
        )
        TotalsCounter(
            "hmmm_consumer_errors",
            "Messages whose processing raised (logged with a traceback, rate-limited)",
            "topic",
            lambda: counters.consumer_errors,
            r,
        )

    def export_store_bounds(self, tracked: Callable[[], int], forgotten: Callable[[], int]) -> None:
        Gauge(
            "hmmm_senders_tracked",
            "Gossip senders with figures kept (capped)",
            registry=self.registry,
        ).set_function(tracked)
        TotalsCounter(
            "hmmm_senders_forgotten",
            "Senders whose figures were dropped to stay under the cap (least recently heard)",
            None,
            forgotten,
            self.registry,
        )

    def export_message_gaps(self, gaps_total: Callable[[], int]) -> None:
        TotalsCounter(
            "hmmm_messages_lost",
            "Messages missing from their sender's seqno sequence (lost before reaching the "
            "monitor); per-sender figures, net of late arrivals, are in /api/v1/peers",
            None,
            gaps_total,
            self.registry,
        )

    def observe_rtt(self, peer_id: str, rtt_s: float) -> None:
        self.peer_rtt.labels(peer_id=peer_id).set(rtt_s)
        self._rtt_peers.add(peer_id)
        self.ping_rtt.observe(rtt_s)

    def prune_peer_rtt(self, keep: set[str]) -> None:
        for peer_id in self._rtt_peers - keep:
            self.peer_rtt.remove(peer_id)
        self._rtt_peers &= keep
