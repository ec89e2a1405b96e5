"""A libp2p host with GossipSub on the mesh topics. Everything here runs in trio."""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, cast

import libp2p.pubsub.pubsub as pubsub_module
import trio
from libp2p import new_host
from libp2p.custom_types import TProtocol
from libp2p.host.ping import ID as PING_PROTOCOL
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr
from multiaddr.protocols import P_P2P

from meshcommon.p2p.errors import describe_dial_error
from meshcommon.p2p.identity import load_or_create_key_pair, peer_id_of
from meshcommon.p2p.lean import lean_host_options
from meshcommon.p2p.types import (
    DialFailure,
    DialOutcome,
    NodeConfig,
    NodeCounters,
    NodeSnapshot,
    PingError,
    ReceivedMessage,
)

log = logging.getLogger(__name__)


class _MeshPubsub(Pubsub):
    """Pubsub with these changes to py-libp2p 0.8.1:

    - Messages it could not queue for a subscriber are counted (the library only logs a
      warning), so a slow consumer shows up as a number.
    - Writes to a peer's stream are serialised. The library writes RPCs from the per-peer
      send loop and directly from GossipSub (publish, control messages) at the same time;
      yamux locks each 64 KiB frame, not the whole RPC, so an RPC larger than one frame
      could be interleaved with another and corrupt the stream for good (the receiver
      fails to parse and drops the peer's stream: the peer looks connected but is never
      heard again). Seen with one 100 KB message published right after connecting.
    - New subscriptions of peers are reported (``on_subscribed``).
    """

    def __init__(
        self,
        *args: Any,
        on_drop: Callable[[str], None],
        on_subscribed: Callable[[str, str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._on_drop = on_drop
        self._on_subscribed = on_subscribed
        self._write_locks: weakref.WeakKeyDictionary[Any, trio.Lock] = weakref.WeakKeyDictionary()

    def handle_subscription(self, origin_id: ID, sub_message: rpc_pb2.RPC.SubOpts) -> None:
        """As upstream, and tell ``on_subscribed`` when a peer newly subscribes to a topic
        (the library keeps no hook for it): the agent announces itself to newcomers."""
        topic = sub_message.topicid
        known = origin_id in self.peer_topics.get(topic, ())
        super().handle_subscription(origin_id, sub_message)
        if (
            self._on_subscribed is not None
            and sub_message.subscribe
            and not known
            and origin_id in self.peer_topics.get(topic, ())
        ):
            self._on_subscribed(topic, _peer(origin_id.to_bytes()))

    def notify_subscriptions(self, publish_message: rpc_pb2.Message) -> None:
        for topic in publish_message.topicIDs:
            if topic in self.topic_ids:
                try:
                    self.subscribed_topics_send[topic].send_nowait(publish_message)
                except trio.WouldBlock:
                    self._on_drop(topic)

    async def write_msg(self, stream: Any, rpc_msg: rpc_pb2.RPC) -> bool:
        lock = self._write_locks.get(stream)
        if lock is None:
            lock = self._write_locks[stream] = trio.Lock()
        async with lock:
            return bool(await super().write_msg(stream, rpc_msg))


class _NoAutoConnect:
    """Stands in for py-libp2p's AutoConnector: same methods, dials nothing."""

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


class _MeshGossipSub(GossipSub):
    """GossipSub that counts the messages it drops on the way out (the library records
    them in a debug log only)."""

    def __init__(
        self, *args: Any, on_drop: Callable[[str, int], None], queue_size: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._on_outbound_drop = on_drop
        self._queue_size = queue_size

    def send_rpc(self, peer_id: ID, rpc: rpc_pb2.RPC, priority: bool = False) -> None:
        queue = self.pubsub.peer_queues.get(peer_id) if self.pubsub is not None else None
        # RpcQueue takes its size only as a constructor default; its inner queue's
        # max_size is a plain attribute, so raise it before the first push.
        if queue is not None and queue._queue.max_size < self._queue_size:
            queue._queue.max_size = self._queue_size
        super().send_rpc(peer_id, rpc, priority)

    def _handle_dropped_rpc(self, peer_id: ID, rpc: rpc_pb2.RPC, reason: str) -> None:
        if len(rpc.publish):
            self._on_outbound_drop(reason, len(rpc.publish))
        super()._handle_dropped_rpc(peer_id, rpc, reason)


def _worth_logging(count: int) -> bool:
    """Log the 1st, 10th, 100th and every 1000th occurrence: the real cause is seen once,
    a flood is not printed (the counters carry the totals)."""
    return count in (1, 10, 100) or count % 1000 == 0


def _parse_peer_id(peer_id: str) -> ID:
    """A peer ID from its text, or ValueError. ``ID.from_base58`` accepts any base58 text
    ("notapeer"); the multiaddr codec checks that it is a real multihash."""
    try:
        Multiaddr(f"/p2p/{peer_id}")
        return ID.from_base58(peer_id)
    except Exception as exc:
        raise ValueError(str(exc)) from exc


def _peer(id_bytes: bytes) -> str:
    try:
        return str(ID(id_bytes).to_base58())
    except Exception:
        return id_bytes.hex()


class MeshNode:
    """libp2p host + GossipSub. ``serve()`` runs it; the other coroutines are called
    while it runs (from trio, usually through ``MeshRuntime``)."""

    def __init__(
        self,
        config: NodeConfig,
        on_message: Callable[[ReceivedMessage], None] | None = None,
        *,
        on_peer_subscribed: Callable[[str, str], None] | None = None,
    ) -> None:
        """``on_message(msg)``: every message from another peer; ``on_peer_subscribed(topic,
        peer_id)``: a peer newly subscribed to a topic. Both run in the node's trio thread:
        they must be quick, and hand anything slow to another thread or loop."""
        self.config = config
        self._on_peer_subscribed = on_peer_subscribed
        self.key_pair = load_or_create_key_pair(config.identity_path)
        self.peer_id = peer_id_of(self.key_pair)
        self._on_message = on_message
        self._host: Any = None
        self._pubsub: _MeshPubsub | None = None
        self._gossipsub: GossipSub | None = None
        self._dial_locks: dict[str, trio.Lock] = {}
        self.counters = NodeCounters()

    # -- lifecycle ----------------------------------------------------------------------
    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        listen = Multiaddr(f"/ip4/{cfg.listen_host}/tcp/{cfg.port}")
        # One connection per peer: otherwise every dial waits ~250 ms (happy eyeballs).
        conn_cfg = ConnectionConfig(max_connections_per_peer=1, dial_timeout=cfg.dial_timeout_s)
        host = new_host(
            key_pair=self.key_pair,
            listen_addrs=[listen],
            connection_config=conn_cfg,
            **lean_host_options(self.key_pair),
        )
        # Our callers retry with their own backoff; the library's 3 retries only add delay.
        # new_host() builds a Swarm; its interface type does not expose retry_config.
        swarm = cast(Swarm, host.get_network())
        swarm.retry_config = RetryConfig(max_retries=1, initial_delay=0.05)
        # The library's AutoConnector dials every peer in the peerstore until ~200
        # connections (its watermark defaults), every 30 s and on each disconnect. Which
        # peers to keep is the services' decision (agents: ring successor + random peers;
        # the monitor: the bootstrap list), so it is switched off.
        swarm.auto_connector = cast(Any, _NoAutoConnect())
        gossipsub = _MeshGossipSub(
            on_drop=self._count_outbound_drop,
            queue_size=cfg.outbound_queue,
            protocols=[TProtocol(PROTOCOL_ID_V11), TProtocol(PROTOCOL_ID)],
            degree=cfg.degree,
            degree_low=cfg.degree_low,
            degree_high=cfg.degree_high,
            heartbeat_interval=cfg.heartbeat_interval,
            # On by default it caps forwarding at 10 msg/s per peer per topic.
            spam_protection_enabled=False,
        )
        pubsub_module.SUBSCRIPTION_CHANNEL_SIZE = cfg.subscription_queue
        pubsub = _MeshPubsub(
            host, gossipsub, on_drop=self._count_drop, on_subscribed=self._on_peer_subscribed
        )
        self._host, self._pubsub, self._gossipsub = host, pubsub, gossipsub
        try:
            async with (
                host.run(listen_addrs=[listen]),
                background_trio_service(pubsub),
                background_trio_service(gossipsub),
                trio.open_nursery() as nursery,
            ):
                await pubsub.wait_until_ready()
                for topic in cfg.topics:
                    sub = await pubsub.subscribe(topic)
                    nursery.start_soon(self._drain, topic, sub)
                log.info("libp2p node %s listening on %s", self.peer_id, listen)
                task_status.started(self.peer_id)
                await trio.sleep_forever()
        finally:
            # The seen-messages cache runs a thread the library never stops.
            pubsub.seen_messages.stop()

    def _count_outbound_drop(self, reason: str, messages: int) -> None:
        dropped = self.counters.outbound_dropped
        before = dropped[reason]
        dropped[reason] += messages
        if before == 0 or before // 1000 != dropped[reason] // 1000:
            log.warning(
                "outbound queue to a peer full (%s): %d messages dropped so far",
                reason,
                dropped[reason],
            )

    def _count_drop(self, topic: str) -> None:
        dropped = self.counters.dropped_by_topic
        dropped[topic] += 1
        if _worth_logging(dropped[topic]):
            log.warning(
                "subscription queue full on %s: %d messages dropped so far", topic, dropped[topic]
            )

    async def _drain(self, topic: str, sub: Any) -> None:
        """Read one subscription as fast as messages come: the consumer callback is
        synchronous and quick, so the queue never backs up behind slow work."""
        while True:
            msg = await sub.get()
            origin = _peer(msg.from_id)
            if origin == self.peer_id:
                continue  # our own publishes come back on our subscription
            if self._on_message is None:
                continue
            received = ReceivedMessage(
                topic=topic,
                from_peer=origin,
                data=bytes(msg.data),
                seqno=bytes(msg.seqno).hex(),
                received_at=time.time(),
            )
            try:
                self._on_message(received)
            except Exception:
                errors = self.counters.consumer_errors
                errors[topic] += 1
                if _worth_logging(errors[topic]):
                    log.exception(
                        "message consumer failed on %s from %s (%d so far)",
                        topic,
                        origin,
                        errors[topic],
                    )

    # -- operations ---------------------------------------------------------------------
    async def publish(self, topic: str, data: bytes) -> None:
        if self._pubsub is None:
            raise RuntimeError("node is not running")
        await self._pubsub.publish(topic, data)

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome:
        """Dial ``peer_id`` trying each multiaddr in turn; every failure is kept with
        its root cause (peer-ID mismatch, refused, timeout...)."""
        started = time.monotonic()
        host = self._host
        if host is None:
            raise RuntimeError("node is not running")
        if peer_id == self.peer_id:
            return DialOutcome(
                peer_id,
                connected=False,
                failures=(DialFailure("", "self", "refusing to dial our own peer ID"),),
            )
        try:
            pid = _parse_peer_id(peer_id)
        except ValueError as exc:
            return DialOutcome(
                peer_id, False, failures=(DialFailure("", "invalid_peer_id", str(exc)),)
            )
        lock = self._dial_locks.setdefault(peer_id, trio.Lock())
        try:
            async with lock:
                return await self._dial(pid, peer_id, multiaddrs, started)
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                # Locks live while dials are in flight, not for every peer ever seen.
                self._dial_locks.pop(peer_id, None)

    async def _dial(
        self, pid: ID, peer_id: str, multiaddrs: Sequence[str], started: float
    ) -> DialOutcome:
        """Try each multiaddr in turn (the caller holds this peer's dial lock)."""
        host = self._host
        if self._is_connected(pid):
            return DialOutcome(peer_id, True, already_connected=True)
        failures: list[DialFailure] = []
        network = host.get_network()
        for addr in multiaddrs:
            try:
                ma = Multiaddr(addr)
                named = ma.get_peer_id()
                if named is not None and named != peer_id:
                    # Dialling it could only end in PeerIDMismatchesPubkey.
                    failures.append(
                        DialFailure(
                            addr, "peer_id_mismatch", f"address names {named}, not {peer_id}"
                        )
                    )
                    continue
                # With or without a /p2p/ suffix: dial the transport part.
                transport_addr = ma.decapsulate_code(P_P2P) if named is not None else ma
                with trio.fail_after(self.config.dial_timeout_s + 1):
                    await network.dial_addr(transport_addr, pid)
            except Exception as exc:
                reason, detail = describe_dial_error(exc)
                failures.append(DialFailure(addr, reason, detail))
                continue
            host.get_peerstore().add_addrs(pid, [transport_addr], 3600)
            elapsed = (time.monotonic() - started) * 1000
            return DialOutcome(peer_id, True, addr, failures=tuple(failures), elapsed_ms=elapsed)
        elapsed = (time.monotonic() - started) * 1000
        return DialOutcome(peer_id, False, failures=tuple(failures), elapsed_ms=elapsed)

    async def ping(self, peer_id: str, timeout_s: float | None = None) -> float:
        """One libp2p ping (``/ipfs/ping/1.0.0``, which every host serves) over the
        existing connection; returns the round-trip time in milliseconds.

        Only the 32-byte echo is timed (``perf_counter``), not the stream opening and
        protocol negotiation before it, so the number is one network round trip. The
        library's own figure is whole milliseconds (0 on loopback), hence our own clock.
        Never dials: an unconnected peer fails at once with ``not_connected``.
        """
        host = self._host
        if host is None:
            raise RuntimeError("node is not running")
        timeout = self.config.ping_timeout_s if timeout_s is None else timeout_s
        try:
            pid = _parse_peer_id(peer_id)
        except ValueError as exc:
            raise PingError(peer_id, "invalid_peer_id", str(exc)) from exc
        if not self._is_connected(pid):
            raise PingError(peer_id, "not_connected", "no open connection (ping never dials)")
        stream: Any = None
        ok = False
        try:
            with trio.fail_after(timeout):
                stream = await host.new_stream(pid, [PING_PROTOCOL])
                started = time.perf_counter()
                await perform_ping_roundtrip(stream)
                rtt_ms = (time.perf_counter() - started) * 1000
            ok = True
        except trio.TooSlowError as exc:
            raise PingError(peer_id, "timeout", f"no pong within {timeout:g} s") from exc
        except Exception as exc:
            reason, detail = describe_dial_error(exc)
            raise PingError(peer_id, "ping_failed", f"{reason}: {detail}") from exc
        finally:
            if stream is not None:
                # Close ends the peer's handler loop cleanly; reset after a failure.
                with trio.move_on_after(1), contextlib.suppress(Exception):
                    await (stream.close() if ok else stream.reset())
        return rtt_ms

    async def disconnect(self, peer_id: str) -> None:
        if self._host is not None:
            await self._host.disconnect(ID.from_base58(peer_id))

    def _is_connected(self, pid: ID) -> bool:
        conns = self._host.get_network().get_connections(pid)
        return any(not getattr(c, "is_closed", False) for c in conns)

    async def snapshot(self) -> NodeSnapshot:
        if self._host is None or self._pubsub is None or self._gossipsub is None:
            raise RuntimeError("node is not running")
        connected = tuple(sorted(str(p) for p in self._host.get_connected_peers()))
        mesh = {
            t: tuple(sorted(str(p) for p in peers)) for t, peers in self._gossipsub.mesh.items()
        }
        return NodeSnapshot(
            peer_id=self.peer_id,
            listen_port=self.config.port,
            connected_peers=connected,
            topics=tuple(self._pubsub.topic_ids),
            mesh_peers=mesh,
            dropped_by_topic=dict(self.counters.dropped_by_topic),
            outbound_dropped=dict(self.counters.outbound_dropped),
        )
