"""The one door for meshcommon's run-time replacements of py-libp2p 0.8.1 behaviour.

``OVERRIDES`` lists every one: its flag (a field of ``P2POverrides``, switched by
``*_P2P_OVERRIDES``), the upstream functions or classes it replaces, the further upstream
names its code relies on (private attributes of copied methods included), the module that
holds our code, and its one install function. ``apply(stage, site)`` installs those whose
flag is on; ``host.build`` calls it at each stage of building a node, and nothing else in
the package replaces upstream behaviour at run time. Nothing here touches a module global:
every install is on this node's own objects.

Stages, in the order ``host.build`` reaches them:

- ``transport``: before ``new_host`` (the transports it is given);
- ``host``: the host, its swarm and upgrader, this node's ``Pinger``;
- ``pubsub``: this node's ``MeshGossipSub``, ``MeshPubsub`` and ``MeshPeerScorer``,
  built with every code path of theirs off (upstream behaviour) and switched on here.

``UPSTREAM`` fingerprints (SHA-256 of ``inspect.getsource``, first 16 hex digits) every
upstream name any override replaces or relies on, and those the other modules that read
py-libp2p's internals depend on (``RELIANCES``: pnet, errors, lean).
``tests/p2p/test_fingerprints.py`` fails when one changes and names the overrides to
re-read; ``python -m meshcommon.p2p.overrides`` prints the table for the installed
py-libp2p (paste it here once the overrides are checked against a new version).

Not in the registry, because they replace nothing at run time: ``lean`` (which modules
are imported, process-wide by nature, switched by ``MESH_LIBP2P_FULL_IMPORT``); ``pnet``
(a transport wrapper chosen by configuration, ``NodeConfig.pnet_keys``: a flag must not
open a closed mesh); constructor arguments (heartbeat, degrees, spam protection off).
Also unconditional: ``MeshPubsub.write_msg`` serialises writes to a pubsub stream (0.8.1
interleaves RPCs larger than a yamux frame and corrupts the stream: no measurement needs
that back), and the hooks that count drops and report new subscriptions.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from meshcommon.p2p.types import NodeConfig, P2POverrides

Stage = Literal["transport", "host", "pubsub"]
STAGES: tuple[Stage, ...] = ("transport", "host", "pubsub")


@dataclass
class Site:
    """One node's parts an override is installed on, filled in as ``host.build`` makes
    them (``None`` before their stage)."""

    config: NodeConfig
    transports: list[Any] = field(default_factory=list)  # new_host(transports=...)
    host: Any = None
    pinger: Any = None  # ping.Pinger
    gossipsub: Any = None  # pubsub.MeshGossipSub
    pubsub: Any = None  # pubsub.MeshPubsub
    scorer: Any = None  # scoring.MeshPeerScorer (only with NodeConfig.validate_messages)


@dataclass(frozen=True)
class Override:
    flag: str  # a field of P2POverrides
    stage: Stage
    ours: str  # the meshcommon module (and class) holding the replacement
    replaces: tuple[str, ...]  # upstream "module:Qualname" replaced or patched
    install: Callable[[Site], None]
    relies_on: tuple[str, ...] = ()  # further upstream names our code reads or copies
    why: str = ""

    def upstream(self) -> tuple[str, ...]:
        return self.replaces + self.relies_on


@dataclass(frozen=True)
class Reliance:
    """A module that reads py-libp2p internals without replacing anything at run time."""

    ours: str
    relies_on: tuple[str, ...]
    why: str


# -- install functions -------------------------------------------------------------------
def _install_tcp(site: Site) -> None:
    from meshcommon.p2p.tcp import BufferedTCP

    site.transports[:] = [BufferedTCP()]


def _install_yamux(site: Site) -> None:
    from meshcommon.p2p.yamux import install_lean_yamux

    install_lean_yamux(site.host)


def _install_mss(site: Site) -> None:
    from meshcommon.p2p.multiselect import PipelinedMultiselectClient

    site.host.multiselect_client = PipelinedMultiselectClient()


def _swarm(site: Site) -> Any:
    # new_host() builds a Swarm; its interface type does not expose these attributes.
    from libp2p.network.swarm import Swarm

    return cast(Swarm, site.host.get_network())


def _install_retry(site: Site) -> None:
    from libp2p.network.config import RetryConfig

    _swarm(site).retry_config = RetryConfig(max_retries=1, initial_delay=0.05)


def _install_noautodial(site: Site) -> None:
    _swarm(site).auto_connector = NoAutoConnect()


def _install_ping(site: Site) -> None:
    site.pinger.reuse_streams = True


def _on_pubsub(flag: str) -> Callable[[Site], None]:
    def install(site: Site) -> None:
        site.pubsub.enable(flag)

    install.__name__ = install.__qualname__ = f"_install_{flag}"
    return install


def _on_gossipsub(flag: str) -> Callable[[Site], None]:
    def install(site: Site) -> None:
        site.gossipsub.enable(flag)

    install.__name__ = install.__qualname__ = f"_install_{flag}"
    return install


def _install_record(site: Site) -> None:
    site.pubsub.enable("record")
    site.gossipsub.enable("record")


def _install_graylist(site: Site) -> None:
    site.pubsub.enable("graylist")
    if site.scorer is not None:
        site.scorer.spec = True


def _install_idontwant(site: Site) -> None:
    site.gossipsub.enable("idontwant")
    site.gossipsub.idontwant_min_bytes = site.config.idontwant_min_bytes
    site.gossipsub.idontwant_budget = site.config.idontwant_budget
    site.pubsub.enable("idontwant")


def _install_heard(site: Site) -> None:
    site.gossipsub.enable("heard")
    site.gossipsub.idontwant_budget = site.config.idontwant_budget
    site.pubsub.enable("heard")


def _install_steadymesh(site: Site) -> None:
    site.gossipsub.enable("steadymesh")


def _install_outqueue(site: Site) -> None:
    site.gossipsub.outbound_queue = site.config.outbound_queue


def _install_subqueue(site: Site) -> None:
    site.pubsub.subscription_queue = site.config.subscription_queue


class NoAutoConnect:
    """Stands in for py-libp2p's ``AutoConnector``: same methods, dials nothing."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def run_background_task(self, nursery: object) -> None:
        return None

    async def maybe_connect(self) -> None:
        return None

    def record_disconnect(self, peer_id: object) -> None:
        return None

    def set_discovery_callback(self, callback: object) -> None:
        return None


# -- the registry ------------------------------------------------------------------------
_PS = "libp2p.pubsub.pubsub:Pubsub"
_GS = "libp2p.pubsub.gossipsub:GossipSub"
_YX = "libp2p.stream_muxer.yamux.yamux"

OVERRIDES: tuple[Override, ...] = (
    Override(
        "tcp",
        "transport",
        "tcp.BufferedTCP",
        ("libp2p.io.trio:TrioTCPStream", "libp2p.transport.tcp.tcp:TCP._dial_resolved"),
        _install_tcp,
        relies_on=(
            "libp2p.transport.tcp.tcp:TCP.create_listener",
            "libp2p.transport.tcp.tcp:TCPListener",
            "libp2p.network.connection.raw_connection:RawConnection",
        ),
        why="one recv() per noise frame half; now one per many frames",
    ),
    Override(
        "yamux",
        "host",
        "yamux.LeanYamux",
        (
            f"{_YX}:YamuxStream.read",
            f"{_YX}:YamuxStream.write",
            f"{_YX}:Yamux.handle_incoming",
            f"{_YX}:Yamux._write_frame",
            "libp2p.stream_muxer.muxer_multistream:MuxerMultistream.new_conn",
        ),
        _install_yamux,
        relies_on=(
            f"{_YX}:YamuxStream.__init__",
            f"{_YX}:YamuxStream._apply_autotune_epoch",
            f"{_YX}:YamuxStream.send_window_update",
            f"{_YX}:Yamux.__init__",
            f"{_YX}:Yamux.open_stream",
            f"{_YX}:Yamux._finalize_stream",
            f"{_YX}:Yamux._finalize_stream_locked",
            f"{_YX}:Yamux._cleanup_on_error",
            f"{_YX}:Yamux._handle_incoming_with_ready_signal",
            f"{_YX}:_yamux_data_read_timeout",
            "libp2p.stream_muxer.rw_lock:ReadWriteLock",  # rw_lock._writer_lock
            "libp2p.stream_muxer.muxer_multistream:MuxerMultistream.__init__",
            "libp2p.stream_muxer.muxer_multistream:MuxerMultistream._annotate_connection",
        ),
        why="a window update per read (3 encrypted frames per 300-byte message); now "
        "go-yamux's half-a-window rule and a batched frame loop",
    ),
    Override(
        "inline",
        "pubsub",
        "pubsub.MeshPubsub.continuously_read_stream",
        (f"{_PS}.continuously_read_stream",),
        _on_pubsub("inline"),
        relies_on=(
            "libp2p.utils.varint:read_varint_prefixed_bytes_limited",
            f"{_PS}._handle_dead_peer",
            f"{_PS}._is_subscribed_to_msg",
        ),
        why="byte-wise varint reads and a task per message",
    ),
    Override(
        "record",
        "pubsub",
        "records.SenderRecordCache, records.OwnRecordCache",
        (
            "libp2p.pubsub.utils:maybe_consume_signed_record",
            "libp2p.peer.peerstore:env_to_send_in_RPC",
        ),
        _install_record,
        relies_on=(
            f"{_GS}.handle_rpc",
            "libp2p.peer.envelope:consume_envelope",
            "libp2p.peer.peerstore:PeerStore.consume_peer_record",
        ),
        why="every RPC's signed peer record verified again; ours rebuilt per forwarded message",
    ),
    Override(
        "sig",
        "pubsub",
        "records.SignatureVerifier",
        ("libp2p.pubsub.validators:signature_validator",),
        _on_pubsub("sig"),
        why="the origin's key re-derived for every message (each signature is still verified)",
    ),
    Override(
        "novalcache",
        "pubsub",
        "pubsub.MeshPubsub.push_msg",
        (f"{_PS}.push_msg",),
        _on_pubsub("novalcache"),
        relies_on=(f"{_PS}.validate_msg", f"{_PS}.set_topic_validator"),
        why="a validation-cache entry per message even when no topic has a validator (was "
        "flag 'lean', still accepted)",
    ),
    Override(
        "noforward",
        "pubsub",
        "pubsub.MeshGossipSub.publish",
        (f"{_GS}.publish",),
        _on_gossipsub("noforward"),
        relies_on=(
            f"{_GS}.__init__",  # _pending_messages
            f"{_GS}._get_peers_to_send",
            f"{_GS}._prune_pending_messages",
            f"{_GS}._check_spam_protection",
            f"{_GS}._check_equivocation",
            f"{_GS}._emit_idontwant_for_message",
            f"{_GS}._notify_observers",
        ),
        why="an RPC and an envelope built when nobody is left to forward to",
    ),
    Override(
        "direct",
        "pubsub",
        "pubsub.MeshPubsub.notify_subscriptions",
        (f"{_PS}.notify_subscriptions",),
        _on_pubsub("direct"),
        why="a memory-channel hop and a task switch per message",
    ),
    Override(
        "coalesce",
        "pubsub",
        "pubsub.MeshPubsub.handle_sending_messages",
        (f"{_PS}.handle_sending_messages",),
        _on_pubsub("coalesce"),
        relies_on=(
            f"{_PS}.write_msg",
            "libp2p.pubsub.rpc_queue:RpcQueue",  # queue._queue
            "libp2p.pubsub.rpc_queue:PriorityQueue",
        ),
        why="one stream write per RPC; now the queued ones in one write",
    ),
    Override(
        "mss",
        "host",
        "multiselect.PipelinedMultiselectClient",
        ("libp2p.protocol_muxer.multiselect_client:MultiselectClient.select_one_of",),
        _install_mss,
        relies_on=(
            "libp2p.protocol_muxer.multiselect_client:MultiselectClient.try_select",
            "libp2p.protocol_muxer.multiselect_client:MultiselectClient.handshake",
            "libp2p.protocol_muxer.multiselect_client:is_valid_handshake",
            "libp2p.protocol_muxer.multiselect_communicator:MultiselectCommunicator",
            "libp2p.host.basic_host:BasicHost.new_stream",  # uses host.multiselect_client
        ),
        why="two round trips per new stream; now one, as go and js do",
    ),
    Override(
        "ping",
        "host",
        "ping.Pinger",
        ("libp2p.host.ping:PingService.ping",),
        _install_ping,
        relies_on=(
            "libp2p.host.ping:perform_ping_roundtrip",
            "libp2p.host.ping:PingService.handle_ping",  # the responder's idle close
        ),
        why="a new stream per ping",
    ),
    Override(
        "graylist",
        "pubsub",
        "scoring.MeshPeerScorer, pubsub.MeshPubsub",
        (
            "libp2p.pubsub.score:PeerScorer",
            f"{_PS}.continuously_read_stream",
            f"{_PS}.push_msg",
        ),
        _install_graylist,
        relies_on=(f"{_GS}.add_peer",),
        why="a graylisted peer's RPCs all handled, a linear P4, scores forgotten on "
        "reconnect, received messages gated by the publish threshold",
    ),
    Override(
        "noautodial",
        "host",
        "overrides.NoAutoConnect",
        ("libp2p.network.auto_connector:AutoConnector",),
        _install_noautodial,
        relies_on=("libp2p.network.swarm:Swarm.run",),
        why="dials every peer in the peerstore up to ~200 connections, every 30 s and on "
        "each disconnect; which peers to keep is the services' decision",
    ),
    Override(
        "retry",
        "host",
        "RetryConfig(max_retries=1, initial_delay=0.05)",
        ("libp2p.network.config:RetryConfig",),
        _install_retry,
        relies_on=("libp2p.network.swarm:Swarm._dial_with_retry",),
        why="3 retries with backoff per dial; our callers retry with their own backoff",
    ),
    Override(
        "outqueue",
        "pubsub",
        "pubsub.MeshGossipSub.send_rpc",
        ("libp2p.pubsub.rpc_queue:RpcQueue.__init__",),
        _install_outqueue,
        relies_on=(f"{_GS}.send_rpc", f"{_GS}._handle_dropped_rpc"),
        why="a 32-RPC per-peer outbound queue overflows under bursts while publish() "
        "succeeds; now NodeConfig.outbound_queue",
    ),
    Override(
        "idontwant",
        "pubsub",
        "pubsub.MeshGossipSub (IDONTWANT), pubsub.MeshPubsub.handle_sending_messages",
        (
            f"{_GS}._emit_idontwant_for_message",
            f"{_GS}.handle_idontwant",
            f"{_GS}._prune_idontwant_entries",
        ),
        _install_idontwant,
        relies_on=(
            f"{_GS}.publish",
            f"{_GS}._get_peers_to_send",  # its msg_id filter, bypassed to count
            f"{_GS}.handle_rpc",  # calls handle_idontwant
            f"{_GS}.heartbeat",  # calls _prune_idontwant_entries
            f"{_GS}.add_peer",  # dont_send_message_ids per peer
            f"{_GS}.remove_peer",
            f"{_PS}.handle_sending_messages",
        ),
        why="IDONTWANT sent for every message, however small, as one RPC per mesh peer, "
        "the forwarder included; 10 IDs kept per peer (the rest replace arbitrary ones), "
        "cleared each heartbeat; not honoured for queued messages; nothing counted",
    ),
    Override(
        "stalestream",
        "pubsub",
        "pubsub.MeshPubsub._handle_dead_peer",
        (f"{_PS}._handle_dead_peer",),
        _on_pubsub("stalestream"),
        relies_on=(
            f"{_PS}._schedule_peer_stream_retry",
            f"{_PS}._handle_new_peer",
            f"{_PS}.stream_handler",  # calls continuously_read_stream per inbound stream
        ),
        why="a peer back with the same key on a new connection, then its dead one closed: "
        "the write error on the old stream made pubsub forget the subscriptions the peer "
        "had just sent on the new one, so nothing was sent to it again",
    ),
    Override(
        "heard",
        "pubsub",
        "pubsub.MeshPubsub.push_msg (duplicates), pubsub.MeshGossipSub.heard",
        (f"{_PS}.push_msg",),
        _install_heard,
        relies_on=(
            f"{_GS}._prune_idontwant_entries",  # the heartbeat's rotation, shared
            f"{_GS}.heartbeat",
            f"{_PS}.handle_sending_messages",  # ours (coalesce) takes them out of the queue
        ),
        why="a peer whose copy of a message reached us in the same wake-up as the first "
        "one was still sent the message back (one frame and one wake-up per mesh peer "
        "whose copy crossed ours)",
    ),
    Override(
        "steadymesh",
        "pubsub",
        "pubsub.MeshGossipSub (adaptive gossip off, _perform_opportunistic_grafting)",
        (
            f"{_GS}._adapt_gossip_parameters",
            f"{_GS}._update_network_health",
            f"{_GS}._perform_opportunistic_grafting",
        ),
        _install_steadymesh,
        relies_on=(
            f"{_GS}.__init__",  # adaptive_gossip_enabled, adaptive_degree_low/high
            f"{_GS}.heartbeat",  # calls the health update only when adaptive
            f"{_GS}.mesh_heartbeat",  # the adaptive bounds; calls the grafting per topic
            f"{_GS}._check_back_off",
            f"{_GS}._notify_mesh_peer_added",
        ),
        why="adaptive gossip (no spec) rates health with scores that are never positive, "
        "finds it poor and stretches the 1 s heartbeat to 30-60 s (mesh repair, gossip, "
        "mcache once a minute), raising D_lo/D_hi; opportunistic grafting at every "
        "heartbeat swells the mesh to D_hi and back",
    ),
    Override(
        "subqueue",
        "pubsub",
        "pubsub.MeshPubsub.subscribe",
        (f"{_PS}.subscribe",),
        _install_subqueue,
        why="a 32-message subscription queue (a module global); now "
        "NodeConfig.subscription_queue, per node",
    ),
)

RELIANCES: tuple[Reliance, ...] = (
    Reliance(
        "liveness.ConnectionReaper",
        (
            "libp2p.network.connection.swarm_connection:SwarmConn.close",
            "libp2p.network.connection.swarm_connection:SwarmConn.new_stream",
            "libp2p.network.swarm:Swarm.remove_conn",
            "libp2p.stream_muxer.yamux.yamux:Yamux.close",
            "libp2p.security.secure_session:SecureSession.close",
        ),
        "closes a dead connection's socket under yamux, then the swarm's close (bounded); "
        "pings on one connection (new_stream + multiselect)",
    ),
    Reliance(
        "pnet.PnetTransport",
        (
            "libp2p.network.connection.raw_connection:RawConnection",
            "libp2p.transport.tcp.tcp:TCP.create_listener",
            "libp2p.transport.tcp.tcp:TCPListener",
        ),
        "wraps RawConnection.stream of a dialled connection and the listener's handler",
    ),
    Reliance(
        "errors.answered_by",
        ("libp2p.security.noise.patterns:PatternXX.handshake_outbound",),
        "reads the peer ID a handshake met from PeerIDMismatchesPubkey's text",
    ),
    Reliance(
        "lean",
        ("libp2p",),
        "stand-ins follow what libp2p/__init__.py imports",
    ),
)

BY_FLAG: dict[str, Override] = {o.flag: o for o in OVERRIDES}


def apply(stage: Stage, site: Site, flags: P2POverrides) -> list[str]:
    """Install, on ``site``, every override of ``stage`` whose flag is on; the flags
    installed."""
    done = []
    for override in OVERRIDES:
        if override.stage == stage and getattr(flags, override.flag):
            override.install(site)
            done.append(override.flag)
    return done


# -- fingerprints ------------------------------------------------------------------------
# Upstream name -> SHA-256 of inspect.getsource (16 hex digits), py-libp2p 0.8.1.
# Regenerate with `python -m meshcommon.p2p.overrides` (only after re-reading each override
# that uses a changed name against the new upstream code).
UPSTREAM: dict[str, str] = {
    "libp2p": "803e73ef8793fcd3",
    "libp2p.host.basic_host:BasicHost.new_stream": "df9efa1bac504f42",
    "libp2p.host.ping:PingService.handle_ping": "eb6730ce272ba339",
    "libp2p.host.ping:PingService.ping": "ebbc43ae77437934",
    "libp2p.host.ping:perform_ping_roundtrip": "1513f57a8089e5f9",
    "libp2p.io.trio:TrioTCPStream": "4f214585e03d69e1",
    "libp2p.network.auto_connector:AutoConnector": "57c27f4b5c25febc",
    "libp2p.network.config:RetryConfig": "3e71bf6d45bd8bc7",
    "libp2p.network.connection.raw_connection:RawConnection": "aea4072e0037a79f",
    "libp2p.network.connection.swarm_connection:SwarmConn.close": "442c6259a8e9e45e",
    "libp2p.network.connection.swarm_connection:SwarmConn.new_stream": "0cbe06151fa44e14",
    "libp2p.network.swarm:Swarm._dial_with_retry": "bd2025f00c84dddb",
    "libp2p.network.swarm:Swarm.remove_conn": "0a3e93157b1a04c3",
    "libp2p.network.swarm:Swarm.run": "15ac9440b4fed110",
    "libp2p.peer.envelope:consume_envelope": "037c805db21bc6a5",
    "libp2p.peer.peerstore:PeerStore.consume_peer_record": "35e869e7ba6df92b",
    "libp2p.peer.peerstore:env_to_send_in_RPC": "9fea9d702c187d22",
    "libp2p.protocol_muxer.multiselect_client:MultiselectClient.handshake": "5d48f19d9e670152",
    "libp2p.protocol_muxer.multiselect_client:MultiselectClient.select_one_of": "a0dda8ab1ebd1006",
    "libp2p.protocol_muxer.multiselect_client:MultiselectClient.try_select": "0d6c7ecb28d96b5a",
    "libp2p.protocol_muxer.multiselect_client:is_valid_handshake": "10a17be95858855f",
    "libp2p.protocol_muxer.multiselect_communicator:MultiselectCommunicator": "839787d17af6f21c",
    "libp2p.pubsub.gossipsub:GossipSub.__init__": "aa2c7451de9a63fa",
    "libp2p.pubsub.gossipsub:GossipSub._adapt_gossip_parameters": "2d6cfc8c6446dd73",
    "libp2p.pubsub.gossipsub:GossipSub._check_back_off": "aab720b22c2eb651",
    "libp2p.pubsub.gossipsub:GossipSub._check_equivocation": "4fc307cdaab33ada",
    "libp2p.pubsub.gossipsub:GossipSub._check_spam_protection": "8fc21f9afd7d03c2",
    "libp2p.pubsub.gossipsub:GossipSub._emit_idontwant_for_message": "54753ff6cf35dec6",
    "libp2p.pubsub.gossipsub:GossipSub._get_peers_to_send": "1d2d334126ca87ec",
    "libp2p.pubsub.gossipsub:GossipSub._handle_dropped_rpc": "c81733f1db845ea1",
    "libp2p.pubsub.gossipsub:GossipSub._notify_mesh_peer_added": "3d7de5cb9b167437",
    "libp2p.pubsub.gossipsub:GossipSub._notify_observers": "f63881f88aba2c25",
    "libp2p.pubsub.gossipsub:GossipSub._perform_opportunistic_grafting": "9450ce094dbedc9a",
    "libp2p.pubsub.gossipsub:GossipSub._prune_idontwant_entries": "16abc231ee843d47",
    "libp2p.pubsub.gossipsub:GossipSub._prune_pending_messages": "3ff9ea114be80457",
    "libp2p.pubsub.gossipsub:GossipSub._update_network_health": "ad93a809234e5ea3",
    "libp2p.pubsub.gossipsub:GossipSub.add_peer": "01b648c9e80b0b5c",
    "libp2p.pubsub.gossipsub:GossipSub.handle_idontwant": "62968dce62c651fc",
    "libp2p.pubsub.gossipsub:GossipSub.handle_rpc": "bb6f7311e2958a22",
    "libp2p.pubsub.gossipsub:GossipSub.heartbeat": "5e68bdb5a65be44f",
    "libp2p.pubsub.gossipsub:GossipSub.mesh_heartbeat": "57f36f0ee54dd461",
    "libp2p.pubsub.gossipsub:GossipSub.publish": "b978282af46297f7",
    "libp2p.pubsub.gossipsub:GossipSub.remove_peer": "bc0ead5b37c88dc3",
    "libp2p.pubsub.gossipsub:GossipSub.send_rpc": "9829bb1473a299fb",
    "libp2p.pubsub.pubsub:Pubsub._handle_dead_peer": "10026d998d3016b4",
    "libp2p.pubsub.pubsub:Pubsub._handle_new_peer": "305ba4224e6151d7",
    "libp2p.pubsub.pubsub:Pubsub._is_subscribed_to_msg": "fb0271117bb6936e",
    "libp2p.pubsub.pubsub:Pubsub._schedule_peer_stream_retry": "0378fb84f4ed5fee",
    "libp2p.pubsub.pubsub:Pubsub.continuously_read_stream": "ac0c4ad87ca39288",
    "libp2p.pubsub.pubsub:Pubsub.handle_sending_messages": "4eb0b978f9c4b142",
    "libp2p.pubsub.pubsub:Pubsub.notify_subscriptions": "2fb1385e4bbf3c0a",
    "libp2p.pubsub.pubsub:Pubsub.push_msg": "1531483ab4d77674",
    "libp2p.pubsub.pubsub:Pubsub.set_topic_validator": "d8f23502a6ce80cb",
    "libp2p.pubsub.pubsub:Pubsub.stream_handler": "4be06aba2f448b7b",
    "libp2p.pubsub.pubsub:Pubsub.subscribe": "935991d27b658c35",
    "libp2p.pubsub.pubsub:Pubsub.validate_msg": "9bc61633d2338dc5",
    "libp2p.pubsub.pubsub:Pubsub.write_msg": "ee86b14b4181afff",
    "libp2p.pubsub.rpc_queue:PriorityQueue": "45e1f46c04e0195c",
    "libp2p.pubsub.rpc_queue:RpcQueue": "f816055e5c2b6a3c",
    "libp2p.pubsub.rpc_queue:RpcQueue.__init__": "29b912ed933ac51f",
    "libp2p.pubsub.score:PeerScorer": "d75686e7d77af1a8",
    "libp2p.pubsub.utils:maybe_consume_signed_record": "11b2181c27d75df4",
    "libp2p.pubsub.validators:signature_validator": "4ef201cd300c8e3e",
    "libp2p.security.noise.patterns:PatternXX.handshake_outbound": "8d2a997bd6b0bbd6",
    "libp2p.security.secure_session:SecureSession.close": "233f93468178dae9",
    "libp2p.stream_muxer.muxer_multistream:MuxerMultistream.__init__": "f48c738eefc0e756",
    "libp2p.stream_muxer.muxer_multistream:MuxerMultistream._annotate_connection": (
        "4f2e4803da001756"
    ),
    "libp2p.stream_muxer.muxer_multistream:MuxerMultistream.new_conn": "91d21f40f524ad99",
    "libp2p.stream_muxer.rw_lock:ReadWriteLock": "4c503b1027c3ef85",
    "libp2p.stream_muxer.yamux.yamux:Yamux.__init__": "3b11a2a71ca444ca",
    "libp2p.stream_muxer.yamux.yamux:Yamux._cleanup_on_error": "4fed61a999a34989",
    "libp2p.stream_muxer.yamux.yamux:Yamux._finalize_stream": "ef7ab7de0fb89264",
    "libp2p.stream_muxer.yamux.yamux:Yamux._finalize_stream_locked": "95b60e92421133b4",
    "libp2p.stream_muxer.yamux.yamux:Yamux._handle_incoming_with_ready_signal": "c4a74d82a0a2dcf2",
    "libp2p.stream_muxer.yamux.yamux:Yamux._write_frame": "16ff969cdd0d2b1b",
    "libp2p.stream_muxer.yamux.yamux:Yamux.close": "d80b27e69ccd1b89",
    "libp2p.stream_muxer.yamux.yamux:Yamux.handle_incoming": "ad15ff6943feac20",
    "libp2p.stream_muxer.yamux.yamux:Yamux.open_stream": "f3e0ef79ec21d0cb",
    "libp2p.stream_muxer.yamux.yamux:YamuxStream.__init__": "ab24c0709285d573",
    "libp2p.stream_muxer.yamux.yamux:YamuxStream._apply_autotune_epoch": "30126bc3d0c140c4",
    "libp2p.stream_muxer.yamux.yamux:YamuxStream.read": "ca585f2199fd4e83",
    "libp2p.stream_muxer.yamux.yamux:YamuxStream.send_window_update": "f76fe6e67077b4a3",
    "libp2p.stream_muxer.yamux.yamux:YamuxStream.write": "d87f74dfb53ab194",
    "libp2p.stream_muxer.yamux.yamux:_yamux_data_read_timeout": "0f5873d6b21e00f7",
    "libp2p.transport.tcp.tcp:TCP._dial_resolved": "04b5a8f8812a5c3a",
    "libp2p.transport.tcp.tcp:TCP.create_listener": "1101353a953a166c",
    "libp2p.transport.tcp.tcp:TCPListener": "2f240727d790157e",
    "libp2p.utils.varint:read_varint_prefixed_bytes_limited": "75623a1c5c4e2c39",
}


def resolve(name: str) -> Any:
    """The upstream object ``module:Qual.name`` (or a whole ``module``)."""
    module, _, qual = name.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qual.split(".") if qual else ():
        obj = getattr(obj, part)
    return obj


def fingerprint(name: str) -> str:
    source = inspect.getsource(resolve(name))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def upstream_names() -> list[str]:
    """Every upstream name an override or a reliance uses, sorted, once each."""
    names: set[str] = set()
    for o in OVERRIDES:
        names.update(o.upstream())
    for r in RELIANCES:
        names.update(r.relies_on)
    return sorted(names)


def users_of(name: str) -> list[str]:
    """What to re-read when ``name`` changes: overrides (flag and module) and modules."""
    out = [f"{o.flag} ({o.ours})" for o in OVERRIDES if name in o.upstream()]
    out += [r.ours for r in RELIANCES if name in r.relies_on]
    return out


def changed(table: dict[str, str] | None = None) -> dict[str, str]:
    """Upstream names whose source differs from ``table`` (default ``UPSTREAM``), each
    with what it now is (a new fingerprint, or why it could not be read)."""
    table = UPSTREAM if table is None else table
    out: dict[str, str] = {}
    for name in upstream_names():
        try:
            now = fingerprint(name)
        except Exception as exc:  # renamed, moved, removed
            out[name] = f"unreadable ({type(exc).__name__}: {exc})"
            continue
        if table.get(name) != now:
            out[name] = now
    return out


def report(changes: dict[str, str]) -> str:
    """The failure message: each changed name, and the overrides to re-read."""
    from meshcommon.p2p.pin import PINNED_LIBP2P_VERSION, installed_libp2p_version

    lines = [
        f"py-libp2p's source differs from what meshcommon's overrides were written against "
        f"(installed {installed_libp2p_version()}, pinned {PINNED_LIBP2P_VERSION}) in "
        f"{len(changes)} upstream name(s). Re-read each override named against the new "
        "upstream code, then regenerate overrides.UPSTREAM (python -m "
        "meshcommon.p2p.overrides):"
    ]
    for name, now in sorted(changes.items()):
        users = ", ".join(users_of(name)) or "nobody (stale table entry)"
        was = UPSTREAM.get(name, "not in the table")
        lines.append(f"  {name} ({was} -> {now}): re-read {users}")
    return "\n".join(lines)


def table_source(names: Iterable[str] | None = None) -> str:
    """``UPSTREAM`` as Python source, for the installed py-libp2p."""
    rows = []
    for name in names or upstream_names():
        row = f'    "{name}": "{fingerprint(name)}",'
        if len(row) > 100:  # the line length ruff allows
            row = f'    "{name}": (\n        "{fingerprint(name)}"\n    ),'
        rows.append(row)
    return "UPSTREAM: dict[str, str] = {\n" + "\n".join(rows) + "\n}"


if __name__ == "__main__":
    import meshcommon.p2p  # noqa: F401  (lean first, as in a service)

    print(table_source())
