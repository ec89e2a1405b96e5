"""The composition root: every part of one agent, built from its ``Settings``.

Nothing else constructs collaborators; tests swap an adapter by passing it here.
"""

from __future__ import annotations

from importlib.metadata import version as package_version

from chorus_agent.consumer import GossipConsumer
from chorus_agent.domain.availability import WorkState
from chorus_agent.domain.peers import PeerBook
from chorus_agent.metrics import AgentMetrics
from chorus_agent.service import Agent
from chorus_agent.settings import Settings
from chorus_agent.workers.broadcaster import Broadcaster
from chorus_agent.workers.peering import Peering
from chorus_agent.workers.pinger import PeerPinger
from meshcommon.p2p.node import MeshNode
from meshcommon.p2p.records import PeerRecordSigner
from meshcommon.p2p.runtime import MeshRuntime
from meshcommon.p2p.types import NodeConfig
from meshcommon.peer.addresses import advertised_multiaddrs, policy_for
from meshcommon.peer.backoff import BackoffPolicy
from meshcommon.peer.bootstrap_client import BootstrapSource, WhooshBootstrapClient

VERSION = package_version("chorus-agent")


def build_agent(settings: Settings, *, bootstrap: BootstrapSource | None = None) -> Agent:
    metrics = AgentMetrics()
    policy = policy_for(settings)
    book = PeerBook(policy)
    metrics.export_peer_book(book)
    consumer = GossipConsumer(
        metrics,
        settings.max_message_bytes,
        learn=book.learn if settings.gossip_discovery else None,
    )
    node = MeshNode(
        NodeConfig.for_peer(settings),
        on_message=consumer,
        # The broadcaster is built below, around the runtime of this very node.
        on_peer_subscribed=lambda topic, peer_id: broadcaster.peer_subscribed(topic, peer_id),
        on_rejected=consumer.reject,
    )
    metrics.export_node_counters(node.counters)
    book.self_id = node.peer_id
    runtime = MeshRuntime(node)
    if bootstrap is None:
        bootstrap = WhooshBootstrapClient.from_settings(
            settings,
            on_result=metrics.count_fetch,
            view_peer_id=node.peer_id,
            view_k=settings.bootstrap_view_k,
        )
    work = WorkState(max_tasks=settings.max_tasks)
    peering = Peering(
        runtime,
        bootstrap,
        metrics,
        policy,
        book,
        target_peers=settings.target_peers,
        interval_s=settings.bootstrap_refresh_s,
        dial_concurrency=settings.dial_concurrency,
        backoff=BackoffPolicy(settings.dial_backoff_initial_s, settings.dial_backoff_max_s),
    )
    broadcaster = Broadcaster(
        runtime,
        work,
        metrics,
        name=settings.name,
        version=VERSION,
        interval_s=settings.broadcast_interval_s,
        first_connection=peering.first_connection,
        multiaddrs=lambda: advertised_multiaddrs(settings, policy, node.peer_id).multiaddrs,
    )
    # One ping per connected peer per period: each connection's RTT in /api/v1/mesh. Its
    # own setting, not the broadcast period: at make run's 10 s broadcasts pinging at that
    # pace was a sixth of an idle agent's wake-ups.
    pinger = PeerPinger(runtime, interval_s=settings.ping_interval_s)
    return Agent(
        settings,
        runtime,
        metrics,
        policy,
        work,
        book,
        bootstrap,
        peering,
        broadcaster,
        pinger,
        VERSION,
        records=PeerRecordSigner(node.key_pair),
    )
