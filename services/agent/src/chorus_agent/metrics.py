"""Prometheus metrics of one agent (a registry per agent, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from chorus_agent.domain.peers import DISCOVERY_SOURCES, PeerBook
from meshcommon.gossip import REJECTION_REASONS
from meshcommon.metrics import (
    ReceivedMessagesCounter,
    TotalsCounter,
    export_runtime_metrics,
)
from meshcommon.p2p.errors import DIAL_FAILURE_REASONS
from meshcommon.p2p.metrics import export_node_counters as export_p2p_counters
from meshcommon.p2p.types import NodeCounters, NodeSnapshot
from meshcommon.peer.bootstrap_client import FETCH_RESULTS
from meshcommon.topics import ALL_TOPICS


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.broadcasts = Counter(
            "chorus_agent_broadcasts_total", "Availability broadcasts", ["result"], registry=r
        )
        self.announcements = Counter(
            "chorus_agent_announcements_total",
            "Availability broadcasts sent, by why: period, first_connection, newcomer (a "
            "peer newly subscribed)",
            ["reason"],
            registry=r,
        )
        self.received = ReceivedMessagesCounter("chorus_agent_messages_received", r)
        self.rejected = Counter(
            "chorus_agent_messages_rejected_total",
            "Gossip messages rejected by topic and reason (with validation: before "
            "forwarding, so they went no further than this agent)",
            ["topic", "reason"],
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
            "chorus_agent_bootstrap_fetch_total",
            "WHOOSH bootstrap fetches by result (ok or the failure kind)",
            ["result"],
            registry=r,
        )
        self.connected_peers = Gauge("chorus_agent_connected_peers", "Connected peers", registry=r)
        self.trio_tasks = Gauge(
            "chorus_agent_trio_tasks", "Tasks alive in the libp2p node's trio thread", registry=r
        )
        export_runtime_metrics(r, "chorus_agent")
        # Known label values start at 0: a first rejection or dial failure is an increase.
        for result in FETCH_RESULTS:
            self.bootstrap_fetch.labels(result=result)
        for topic in ALL_TOPICS:
            for reason in REJECTION_REASONS:
                self.rejected.labels(topic=topic, reason=reason)
        for reason in DIAL_FAILURE_REASONS:
            self.dial_failures.labels(reason=reason)

    def count_rejected(self, topic: str, reason: str) -> None:
        # Validators run only on our topics; without validation a message on another
        # topic never reaches the consumer either (not subscribed): the label is bounded.
        self.rejected.labels(topic=topic, reason=reason).inc()

    def count_received(self, topic: str, message_type: str) -> None:
        self.received.count(topic, message_type)

    def observe_node(self, snapshot: NodeSnapshot) -> None:
        """Gauges read from a snapshot of the libp2p node."""
        self.connected_peers.set(len(snapshot.connected_peers))
        self.trio_tasks.set(snapshot.trio_tasks)

    def export_peer_book(self, book: PeerBook) -> None:
        r = self.registry
        Gauge(
            "chorus_agent_known_peers", "Peers in the peer book (capped)", registry=r
        ).set_function(lambda: len(book))
        TotalsCounter(
            "chorus_agent_peers_refused",
            "Peers announced over gossip and not added, by reason (too_many_multiaddrs...)",
            "reason",
            lambda: book.refused,
            r,
        )
        TotalsCounter(
            "chorus_agent_peers_discovered",
            "Peers new to the peer book, by the source that named them first: bootstrap "
            "(WHOOSH, static), gossip (availability broadcasts), dht (Kademlia)",
            "source",
            lambda: book.discovered,
            r,
            always=DISCOVERY_SOURCES,
        )
        TotalsCounter(
            "chorus_agent_peers_evicted",
            "Peers dropped from the full peer book (the one heard of longest ago goes)",
            None,
            lambda: book.evicted,
            r,
        )

    def count_fetch(self, result: str) -> None:
        """One bootstrap fetch: ``ok`` or the failure kind."""
        self.bootstrap_fetch.labels(result=result).inc()

    def export_node_counters(self, counters: NodeCounters) -> None:
        """What the libp2p node counts in its own thread, read at scrape time."""
        export_p2p_counters(self.registry, "chorus_agent", counters)
