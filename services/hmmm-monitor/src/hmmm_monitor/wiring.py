"""The composition root: every part of the monitor, built from its ``Settings``.

Nothing else constructs collaborators; tests swap an adapter (the libp2p runtime, the
bootstrap source) by passing it here.
"""

from __future__ import annotations

from importlib.metadata import version as package_version

from hmmm_monitor.consumer import GossipConsumer
from hmmm_monitor.domain.expected_peers import ExpectedPeers
from hmmm_monitor.domain.store import MessageStore
from hmmm_monitor.metrics import MonitorMetrics
from hmmm_monitor.service import Monitor
from hmmm_monitor.settings import Settings
from hmmm_monitor.workers.connector import PeerConnector
from hmmm_monitor.workers.link_prober import LinkProber
from meshcommon.p2p.node import MeshNode
from meshcommon.p2p.runtime import MeshRuntime
from meshcommon.p2p.types import NodeConfig
from meshcommon.peer.addresses import policy_for
from meshcommon.peer.bootstrap_client import BootstrapSource, WhooshBootstrapClient

VERSION = package_version("hmmm-monitor")


def build_monitor(settings: Settings, *, bootstrap: BootstrapSource | None = None) -> Monitor:
    metrics = MonitorMetrics()
    store = MessageStore(settings.messages_keep)
    metrics.export_message_gaps(store.gaps_total)
    metrics.export_store_bounds(store.tracked_senders, lambda: store.senders_forgotten)
    metrics.export_kept_messages(store.kept_bytes, store.max_bytes)
    consumer = GossipConsumer(
        store,
        metrics,
        max_bytes=settings.max_message_bytes,
        log_to_stdout=settings.log_messages_to_stdout,
        invalid_log_interval_s=settings.invalid_log_interval_s,
    )
    node = MeshNode(NodeConfig.for_peer(settings), on_message=consumer, on_rejected=consumer.reject)
    metrics.export_node_counters(node.counters)
    runtime = MeshRuntime(node)
    if bootstrap is None:
        bootstrap = WhooshBootstrapClient.from_settings(settings, on_result=metrics.count_fetch)
    policy = policy_for(settings)
    expected = ExpectedPeers(
        backoff_initial_s=settings.dial_backoff_initial_s,
        backoff_max_s=settings.dial_backoff_max_s,
        forget_after_s=settings.forget_after_s,
    )
    connector = PeerConnector(
        runtime, policy, expected, concurrency=settings.dial_concurrency, metrics=metrics
    )
    return Monitor(
        settings,
        VERSION,
        runtime=runtime,
        policy=policy,
        bootstrap=bootstrap,
        expected=expected,
        connector=connector,
        prober=LinkProber(runtime, metrics=metrics, identifier=runtime),
        store=store,
        consumer=consumer,
        metrics=metrics,
    )
