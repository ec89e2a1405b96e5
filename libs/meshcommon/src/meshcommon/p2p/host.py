"""Building one node's libp2p stack: transports, host, GossipSub, Pubsub, scoring, the
topic validators, with the overrides installed through the one door (``overrides.apply``)
at each stage. Nothing here sets anything process-wide."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from libp2p import new_host
from libp2p.crypto.keys import KeyPair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12
from libp2p.pubsub.pb import rpc_pb2
from libp2p.transport.tcp.tcp import TCP
from multiaddr import Multiaddr

from meshcommon.p2p import overrides
from meshcommon.p2p.dht import MeshDHT
from meshcommon.p2p.dial import Dialer
from meshcommon.p2p.lean import lean_host_options
from meshcommon.p2p.liveness import ConnectionReaper
from meshcommon.p2p.ping import Pinger
from meshcommon.p2p.pnet import OnRefused, PnetTransport
from meshcommon.p2p.pubsub import MeshGossipSub, MeshPubsub
from meshcommon.p2p.scoring import MeshPeerScorer, scoring_params
from meshcommon.p2p.types import NodeConfig, NodeCounters
from meshcommon.p2p.validation import GossipValidator


@dataclass(frozen=True)
class Hooks:
    """What the node wants told (all called in its trio thread)."""

    counters: NodeCounters
    deliver: Callable[[str, rpc_pb2.Message], None]  # a message for our subscriptions
    on_subscription_drop: Callable[[str], None]  # a full subscription channel dropped one
    on_outbound_drop: Callable[[str, int], None]  # (reason, messages) not queued for a peer
    on_pnet_refused: OnRefused
    on_graylisted: Callable[[str, float, float], None]  # (peer, score, until)
    on_subscribed: Callable[[str, str], None] | None = None  # (topic, peer)
    validator: GossipValidator | None = None


@dataclass(frozen=True)
class Stack:
    """One node's built parts (not yet running: ``host.run`` and the services start them)."""

    peer_id: str
    config: NodeConfig
    listen: Multiaddr
    host: Any
    gossipsub: MeshGossipSub
    pubsub: MeshPubsub
    pinger: Pinger
    dialer: Dialer
    counters: NodeCounters
    scorer: MeshPeerScorer | None
    validator: GossipValidator | None
    installed: tuple[str, ...]  # the overrides' flags installed, in order
    reaper: ConnectionReaper  # closes connections to vanished peers (run in the node)
    dht: MeshDHT | None = None  # Kademlia discovery (NodeConfig.dht)


def build(config: NodeConfig, key_pair: KeyPair, peer_id: str, hooks: Hooks) -> Stack:
    flags = config.overrides
    site = overrides.Site(config)
    installed = overrides.apply("transport", site, flags)
    listen = Multiaddr(f"/ip4/{config.listen_host}/tcp/{config.port}")
    # One connection per peer: otherwise every dial waits ~250 ms (happy eyeballs).
    conn_cfg = ConnectionConfig(max_connections_per_peer=1, dial_timeout=config.dial_timeout_s)
    options: dict[str, Any] = lean_host_options(key_pair)
    if config.pnet_keys:
        # Every raw connection, dialled or accepted, goes through the private network
        # before multistream-select (prove_key's dials included: same transport).
        inner = site.transports[0] if site.transports else TCP()
        site.transports[:] = [
            PnetTransport(
                inner,
                config.pnet_keys,
                on_refused=hooks.on_pnet_refused,
                accept_budget_s=config.pnet_accept_budget_s,
            )
        ]
    if site.transports:
        options["transports"] = list(site.transports)
    host: Any = new_host(
        key_pair=key_pair, listen_addrs=[listen], connection_config=conn_cfg, **options
    )
    site.host = host
    site.pinger = Pinger(host, config.ping_timeout_s)
    # Not an override (nothing of py-libp2p's is replaced): a notifee and the pings' outcomes.
    reaper = ConnectionReaper(
        host,
        hooks.counters,
        failures_to_close=config.ping_failures_to_close,
        probe_timeout_s=config.ping_timeout_s,
    )
    host.get_network().register_notifee(reaper.notifee())
    site.pinger.on_result = reaper.ping_result
    installed += overrides.apply("host", site, flags)

    gossipsub = MeshGossipSub(
        on_drop=hooks.on_outbound_drop,
        counters=hooks.counters,
        # v1.2 (IDONTWANT) first, as go and js offer it; v1.1 and v1.0 peers still meet.
        protocols=[TProtocol(PROTOCOL_ID_V12), TProtocol(PROTOCOL_ID_V11), TProtocol(PROTOCOL_ID)],
        degree=config.degree,
        degree_low=config.degree_low,
        degree_high=config.degree_high,
        heartbeat_interval=config.heartbeat_interval,
        # On by default it caps forwarding at 10 msg/s per peer per topic.
        spam_protection_enabled=False,
        max_idontwant_messages=config.idontwant_budget,
    )
    scorer = None
    if hooks.validator is not None:
        # GossipSub v1.1 scoring: invalid messages (P4) lower the forwarder's score;
        # below the graylist threshold its RPCs are ignored (meshcommon.p2p.scoring).
        scorer = MeshPeerScorer(
            scoring_params(config.topics),
            spec=False,  # the graylist override switches the spec behaviour on
            heartbeat_s=float(config.heartbeat_interval),
            on_graylisted=hooks.on_graylisted,
            counters=hooks.counters,
        )
        gossipsub.use_scorer(scorer)
    pubsub = MeshPubsub(
        host,
        gossipsub,
        on_drop=hooks.on_subscription_drop,
        on_subscribed=hooks.on_subscribed,
        deliver=hooks.deliver,
        counters=hooks.counters,
    )
    if hooks.validator is not None:
        for topic in config.topics:  # synchronous: no task per message
            pubsub.set_topic_validator(topic, hooks.validator, False)
    site.gossipsub, site.pubsub, site.scorer = gossipsub, pubsub, scorer
    reaper.on_closed = pubsub.connection_closed
    reaper.outbound_conn = pubsub.outbound_conn
    installed += overrides.apply("pubsub", site, flags)
    dht = None
    if config.dht:
        # On the host's streams, hence inside the private network when there is one.
        dht = MeshDHT(
            host,
            protocol=config.dht_protocol,
            server=config.dht_server,
            budget=config.dht_budget,
            refresh_s=config.dht_refresh_s,
            counters=hooks.counters.dht,
        )
        dht.install()
    return Stack(
        peer_id=peer_id,
        config=config,
        listen=listen,
        host=host,
        gossipsub=gossipsub,
        pubsub=pubsub,
        pinger=site.pinger,
        dialer=Dialer(host, config, peer_id),
        counters=hooks.counters,
        scorer=scorer,
        validator=hooks.validator,
        installed=tuple(installed),
        reaper=reaper,
        dht=dht,
    )
