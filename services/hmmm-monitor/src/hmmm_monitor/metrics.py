"""Prometheus metrics on a registry owned by one monitor (tests build many per process)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hmmm_monitor.domain.expected_peers import REASON_NO_DIALABLE
from hmmm_monitor.domain.neighbourhood import LINK_QUALITIES, LinkThresholds, Neighbourhood
from meshcommon.gossip import REJECTION_REASONS
from meshcommon.metrics import (
    ReceivedMessagesCounter,
    TotalsCounter,
    export_runtime_metrics,
)
from meshcommon.neighbours import IMPLEMENTATIONS, Neighbour
from meshcommon.neighbours import REJECT_REASONS as NEIGHBOUR_REJECT_REASONS
from meshcommon.p2p.errors import DIAL_FAILURE_REASONS
from meshcommon.p2p.metrics import export_node_counters as export_p2p_counters
from meshcommon.p2p.types import NodeCounters
from meshcommon.peer.bootstrap_client import FETCH_RESULTS


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages_received = ReceivedMessagesCounter("hmmm_messages_received", r)
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
        # One series per expected peer (the bootstrap list, plus peers that left it for at
        # most forget_after_s): removed when the peer is forgotten, so churn cannot grow it.
        self.peer_heard = Gauge(
            "hmmm_peer_heard",
            "1 if this expected peer was heard within heard_window_s, else 0",
            ["peer_id", "name"],
            registry=r,
        )
        self.mesh_components = Gauge(
            "hmmm_mesh_components",
            "Connected components of the agent graph the agents report (more than 1: the "
            "mesh is partitioned; 0: no agent reported yet)",
            registry=r,
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
        # The mesh seen from every agent (meshcommon.neighbours). Bounded labels only: a
        # result, an implementation or a link quality (fixed sets), never a peer ID.
        self.neighbour_reports = Counter(
            "hmmm_neighbour_reports",
            "Agents' neighbours reports: ok, or the reason one was refused",
            ["result"],
            registry=r,
        )
        self.agent_link_rtt = Histogram(
            "hmmm_agent_link_rtt_seconds",
            "Median ping RTT of each link an agent reports, per report",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.mesh_peers_by_implementation = Gauge(
            "hmmm_mesh_peers_by_implementation",
            "Peers the agents report as neighbours, by libp2p implementation (identify "
            "agent version)",
            ["implementation"],
            registry=r,
        )
        self.agent_links = Gauge(
            "hmmm_agent_links",
            "Links between agents, by quality (ok, slow, lossy, unmeasured)",
            ["quality"],
            registry=r,
        )
        self.agent_link_bytes = Gauge(
            "hmmm_agent_link_bytes_per_second",
            "Bytes per second over all the links the agents report, by direction (as each "
            "reporting agent sees it)",
            ["direction"],
            registry=r,
        )
        for result in ("ok", *NEIGHBOUR_REJECT_REASONS):
            self.neighbour_reports.labels(result=result)
        for impl in IMPLEMENTATIONS:
            self.mesh_peers_by_implementation.labels(implementation=impl)
        for quality in LINK_QUALITIES:
            self.agent_links.labels(quality=quality)
        export_runtime_metrics(r, "hmmm")
        self._heard_labels: dict[str, str] = {}  # peer_id -> name of its hmmm_peer_heard
        # Known label values start at 0: a first rejection or dial failure is an increase.
        for result in FETCH_RESULTS:
            self.bootstrap_fetch.labels(result=result)
        for reason in REJECTION_REASONS:
            self.messages_rejected.labels(reason=reason)
        for reason in (*DIAL_FAILURE_REASONS, REASON_NO_DIALABLE):
            self.dial_failures.labels(reason=reason)

    def observe_neighbours(self, report: Iterable[Neighbour]) -> None:
        """One accepted neighbours report."""
        self.neighbour_reports.labels(result="ok").inc()
        for n in report:
            if n.rtt_ms is not None:
                self.agent_link_rtt.observe(n.rtt_ms / 1000)

    def set_neighbourhood(
        self, view: Neighbourhood, agents: set[str], limits: LinkThresholds
    ) -> None:
        """Gauges from the agents' fresh reports."""
        by_impl = Tally(p.implementation for p in view.peers().values())
        for impl in IMPLEMENTATIONS:
            self.mesh_peers_by_implementation.labels(implementation=impl).set(by_impl[impl])
        qualities = Tally(link.quality(limits) for link in view.links(agents))
        for quality in LINK_QUALITIES:
            self.agent_links.labels(quality=quality).set(qualities[quality])
        for direction, attr in (("in", "bytes_in_per_s"), ("out", "bytes_out_per_s")):
            total = sum(getattr(n, attr) or 0.0 for ns in view.reports.values() for n in ns)
            self.agent_link_bytes.labels(direction=direction).set(total)

    def count_fetch(self, result: str) -> None:
        """One bootstrap fetch: ``ok`` or the failure kind."""
        self.bootstrap_fetch.labels(result=result).inc()

    def export_node_counters(self, counters: NodeCounters) -> None:
        """What the libp2p node counts in its own thread, read at scrape time."""
        export_p2p_counters(self.registry, "hmmm", counters)

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

    def export_kept_messages(self, kept_bytes: Callable[[], int], cap_bytes: int) -> None:
        """The recent messages kept for /api/v1/messages: bytes counted, and the cap."""
        Gauge(
            "hmmm_messages_kept_bytes",
            "Bytes the kept recent messages count against their cap (payloads as received "
            "plus a fixed overhead each)",
            registry=self.registry,
        ).set_function(kept_bytes)
        Gauge(
            "hmmm_messages_kept_bytes_limit",
            "The cap on hmmm_messages_kept_bytes (the oldest messages go first)",
            registry=self.registry,
        ).set(cap_bytes)

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

    def count_received(self, topic: str, message_type: str) -> None:
        self.messages_received.count(topic, message_type)

    def set_peer_heard(self, expected: Mapping[str, str], heard: set[str]) -> None:
        """``expected``: peer_id -> name. One series per expected peer; the series of peers
        no longer expected (or renamed) are removed."""
        for peer_id, name in list(self._heard_labels.items()):
            if expected.get(peer_id) != name:
                self.peer_heard.remove(peer_id, name)
                del self._heard_labels[peer_id]
        for peer_id, name in expected.items():
            self.peer_heard.labels(peer_id=peer_id, name=name).set(1 if peer_id in heard else 0)
            self._heard_labels[peer_id] = name
