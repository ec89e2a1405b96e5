"""A libp2p host with GossipSub on the mesh topics. Everything here runs in trio."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
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
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11
from libp2p.pubsub.pb import rpc_pb2
from libp2p.tools.anyio_service import background_trio_service
from libp2p.transport.tcp.tcp import TCP
from multiaddr import Multiaddr
from multiaddr.protocols import P_P2P

from meshcommon.limits import (
    MAX_MESH_VIEW_TOPICS,
    MAX_MULTIADDRS_PER_PEER,
    REASON_TOO_MANY_MULTIADDRS,
)
from meshcommon.p2p.errors import describe_dial_error
from meshcommon.p2p.identity import node_key_pair, peer_id_of
from meshcommon.p2p.lean import lean_host_options
from meshcommon.p2p.multiselect import PipelinedMultiselectClient
from meshcommon.p2p.pnet import PnetTransport
from meshcommon.p2p.pubsub import MeshGossipSub, MeshPubsub, peer_text
from meshcommon.p2p.scoring import MeshPeerScorer, scoring_params
from meshcommon.p2p.tcp import BufferedTCP
from meshcommon.p2p.types import (
    ConnectionView,
    DialFailure,
    DialOutcome,
    KeyProof,
    MeshView,
    NodeConfig,
    NodeCounters,
    NodeSnapshot,
    PingError,
    PnetRefusal,
    ReceivedMessage,
    RejectedMessage,
    TopicMesh,
)
from meshcommon.p2p.validation import GossipValidator
from meshcommon.p2p.yamux import install_lean_yamux

log = logging.getLogger(__name__)

MAX_CACHED_ORIGINS = 10_000
MAX_SCORED_PEERS_LISTED = 256  # peers with a score listed in the mesh view (worst first)
MAX_KEPT_RTTS = 4096  # peers whose last ping RTT is remembered (connected ones are kept)
PING_STREAM_REUSE_S = 5.0  # a ping stream idle longer is closed, not reused
REASON_DEADLINE = "deadline"  # the peer's dial deadline passed before this address was tried


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


_PNET_REASON_TEXT = {
    "wrong_key": "the peer has a private network with another key",
    "no_key": "the peer has no private network (no swarm.key)",
    "closed": "closed before the private-network greeting",
    "timeout": "no private-network greeting in time",
}


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


class MeshNode:
    """libp2p host + GossipSub. ``serve()`` runs it; the other coroutines are called
    while it runs (from trio, usually through ``MeshRuntime``)."""

    def __init__(
        self,
        config: NodeConfig,
        on_message: Callable[[ReceivedMessage], None] | None = None,
        *,
        on_peer_subscribed: Callable[[str, str], None] | None = None,
        on_rejected: Callable[[RejectedMessage], None] | None = None,
    ) -> None:
        """``on_message(msg)``: every message from another peer; ``on_peer_subscribed(topic,
        peer_id)``: a peer newly subscribed to a topic; ``on_rejected(rejected)``: a message
        the validator refused (``config.validate_messages``). They run in the node's trio
        thread: they must be quick, and hand anything slow to another thread or loop."""
        self.config = config
        self._on_peer_subscribed = on_peer_subscribed
        self.key_pair = node_key_pair(
            config.identity_path, config.identity_secret_file, config.identity_scope
        )
        self.peer_id = peer_id_of(self.key_pair)
        self._on_message = on_message
        self._host: Any = None
        self._pubsub: MeshPubsub | None = None
        self._gossipsub: MeshGossipSub | None = None
        self._dial_locks: dict[str, trio.Lock] = {}
        self._origins: dict[bytes, str] = {}  # wire peer ID -> base58, bounded
        self._ping_streams: dict[str, tuple[Any, float]] = {}
        self._ping_locks: dict[str, trio.Lock] = {}
        self._last_rtt: dict[str, tuple[float, float]] = {}  # peer -> (ms, unix time)
        self.counters = NodeCounters()
        self._validator: GossipValidator | None = None
        self._scorer: MeshPeerScorer | None = None
        if config.validate_messages:
            self._validator = GossipValidator(
                self.counters,
                self._origin,
                max_bytes=config.max_message_bytes,
                on_rejected=on_rejected,
            )

    # -- lifecycle ----------------------------------------------------------------------
    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        fix = cfg.overrides
        listen = Multiaddr(f"/ip4/{cfg.listen_host}/tcp/{cfg.port}")
        # One connection per peer: otherwise every dial waits ~250 ms (happy eyeballs).
        conn_cfg = ConnectionConfig(max_connections_per_peer=1, dial_timeout=cfg.dial_timeout_s)
        options: dict[str, Any] = lean_host_options(self.key_pair)
        if fix.tcp:
            options["transports"] = [BufferedTCP()]
        if cfg.pnet_keys:
            # Every raw connection, dialled or accepted, goes through the private network
            # before multistream-select (prove_key's dials included: same transport).
            tcp = options["transports"][0] if fix.tcp else TCP()
            options["transports"] = [
                PnetTransport(
                    tcp,
                    cfg.pnet_keys,
                    on_refused=self._count_pnet_refusal,
                    accept_budget_s=cfg.pnet_accept_budget_s,
                )
            ]
        host: Any = new_host(
            key_pair=self.key_pair, listen_addrs=[listen], connection_config=conn_cfg, **options
        )
        if fix.yamux:
            install_lean_yamux(host)
        if fix.mss:
            host.multiselect_client = PipelinedMultiselectClient()
        # Our callers retry with their own backoff; the library's 3 retries only add delay.
        # new_host() builds a Swarm; its interface type does not expose retry_config.
        swarm = cast(Swarm, host.get_network())
        swarm.retry_config = RetryConfig(max_retries=1, initial_delay=0.05)
        # The library's AutoConnector dials every peer in the peerstore until ~200
        # connections (its watermark defaults), every 30 s and on each disconnect. Which
        # peers to keep is the services' decision (agents: ring successor + random peers;
        # the monitor: the bootstrap list), so it is switched off.
        swarm.auto_connector = cast(Any, _NoAutoConnect())
        gossipsub = MeshGossipSub(
            overrides=fix,
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
        if self._validator is not None:
            # GossipSub v1.1 scoring: invalid messages (P4) lower the forwarder's score;
            # below the graylist threshold its RPCs are ignored (meshcommon.p2p.scoring).
            self._scorer = MeshPeerScorer(
                scoring_params(cfg.topics),
                spec=fix.graylist,
                heartbeat_s=float(cfg.heartbeat_interval),
                on_graylisted=self._log_graylisted,
                counters=self.counters,
            )
            gossipsub.use_scorer(self._scorer)
        pubsub_module.SUBSCRIPTION_CHANNEL_SIZE = cfg.subscription_queue
        pubsub = MeshPubsub(
            host,
            gossipsub,
            overrides=fix,
            on_drop=self._count_drop,
            on_subscribed=self._on_peer_subscribed,
            deliver=self._deliver,
            counters=self.counters,
        )
        if self._validator is not None:
            for topic in cfg.topics:  # synchronous: no task per message
                pubsub.set_topic_validator(topic, self._validator, False)
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
                    if not fix.direct:  # (direct) messages arrive in _deliver instead
                        nursery.start_soon(self._drain, topic, sub)
                log.info("libp2p node %s listening on %s", self.peer_id, listen)
                self._log_private_network()
                task_status.started(self.peer_id)
                await trio.sleep_forever()
        finally:
            # The seen-messages cache runs a thread the library never stops.
            pubsub.seen_messages.stop()

    def _log_private_network(self) -> None:
        cfg = self.config
        if not cfg.pnet_keys:
            log.warning(
                "open mesh: any libp2p peer that reaches port %d can join; set %s (a "
                "swarm.key) to admit only peers holding the key",
                cfg.port,
                cfg.pnet_setting,
            )
            return
        # Fingerprints (SHA-256 prefixes) tell keys apart; the keys are never logged.
        prints = [hashlib.sha256(k).hexdigest()[:8] for k in cfg.pnet_keys]
        log.info(
            "private network on: dialling with key %s, accepting %s",
            prints[0],
            ", ".join(prints),
        )

    def _count_pnet_refusal(self, direction: str, reason: str, remote: str) -> None:
        """A connection the private network refused (pnet.PnetTransport): counted by
        direction and reason, logged rate-limited with the remote address."""
        refused = self.counters.pnet_refused
        refused[direction, reason] += 1
        self.counters.pnet_recent.append(PnetRefusal(time.time(), direction, reason, remote))
        total = sum(n for (d, _), n in refused.items() if d == direction)
        if _worth_logging(total):
            log.warning(
                "private network refused an %s connection %s %s: %s (%s); %d %s refusals so far",
                direction,
                "from" if direction == "inbound" else "to",
                remote or "?",
                reason,
                _PNET_REASON_TEXT.get(reason, reason),
                total,
                direction,
            )

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

    def _log_graylisted(self, peer_id: str, score: float, until: float) -> None:
        if _worth_logging(self.counters.graylistings):
            log.warning(
                "peer %s graylisted (score %.1f below %.1f, invalid messages): its RPCs are "
                "ignored until about %s; %d graylisting(s) so far",
                peer_id,
                score,
                scoring_params().graylist_threshold,
                time.strftime("%H:%M:%S", time.localtime(until)),
                self.counters.graylistings,
            )

    def _count_drop(self, topic: str) -> None:
        dropped = self.counters.dropped_by_topic
        dropped[topic] += 1
        if _worth_logging(dropped[topic]):
            log.warning(
                "subscription queue full on %s: %d messages dropped so far", topic, dropped[topic]
            )

    async def _drain(self, topic: str, sub: Any) -> None:
        """Read one subscription's channel as fast as messages come (without the
        ``direct`` override): the consumer callback is synchronous and quick, so the
        channel never backs up behind slow work."""
        while True:
            msg = await sub.get()
            self._deliver(topic, msg)

    def _deliver(self, topic: str, msg: rpc_pb2.Message) -> None:
        """One message from another peer to the consumer; what it raises is counted and
        logged (rate-limited), never lost, and never stops the delivery of the next."""
        decoded = self._validator.take(msg) if self._validator is not None else None
        origin = self._origin(msg.from_id)
        if origin == self.peer_id or self._on_message is None:
            return  # our own publishes come back on our subscription
        received = ReceivedMessage(
            topic=topic,
            from_peer=origin,
            data=bytes(msg.data),
            seqno=bytes(msg.seqno).hex(),
            received_at=time.time(),
            decoded=decoded,
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

    def _origin(self, from_id: bytes) -> str:
        """The base58 peer ID of a message's origin, cached (a few origins send most
        messages; base58 encoding costs more than the dict lookup)."""
        name = self._origins.get(from_id)
        if name is None:
            if len(self._origins) >= MAX_CACHED_ORIGINS:
                self._origins.clear()  # forged origins cannot grow it
            name = self._origins[from_id] = peer_text(from_id)
        return name

    # -- operations ---------------------------------------------------------------------
    async def publish(self, topic: str, data: bytes) -> None:
        if self._pubsub is None:
            raise RuntimeError("node is not running")
        await self._pubsub.publish(topic, data)

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome:
        """Dial ``peer_id`` trying each multiaddr in turn; every failure is kept with
        its root cause (peer-ID mismatch, refused, timeout...).

        Bounded whatever the peer advertises: at most ``MAX_MULTIADDRS_PER_PEER``
        addresses are tried, each within ``dial_timeout_s``, all of them within
        ``dial_deadline_s`` (py-libp2p's ``dial_peer`` has neither bound: 5,000 addresses
        that hang would take hours)."""
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
        addrs = list(multiaddrs)
        if len(addrs) > MAX_MULTIADDRS_PER_PEER:
            failures.append(
                DialFailure(
                    "",
                    REASON_TOO_MANY_MULTIADDRS,
                    f"{len(addrs)} multiaddrs; only the first {MAX_MULTIADDRS_PER_PEER} tried",
                )
            )
            addrs = addrs[:MAX_MULTIADDRS_PER_PEER]
        network = host.get_network()
        cfg = self.config
        deadline = trio.current_time() + cfg.dial_deadline_s
        for tried, addr in enumerate(addrs):
            left = deadline - trio.current_time()
            if left <= 0:
                failures.append(
                    DialFailure(
                        "",
                        REASON_DEADLINE,
                        f"{len(addrs) - tried} of {len(addrs)} multiaddrs not tried: the "
                        f"peer's {cfg.dial_deadline_s:g} s dial deadline passed",
                    )
                )
                break
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
                # One second past py-libp2p's own dial timeout, so that its clearer error
                # usually comes first; never past the peer's deadline.
                with trio.fail_after(min(cfg.dial_timeout_s + 1, left)):
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

    async def prove_key(self, peer_id: str, multiaddr: str) -> KeyProof:
        """Whether the host at ``multiaddr`` holds ``peer_id``'s key: the libp2p security
        handshake (noise) alone, then hang up.

        Unlike ``connect``, no connection is added to the swarm: it works while a
        connection to the real holder is open (``connect`` would return at once), and
        the host tested never becomes a peer. What tells two hosts claiming one peer ID
        apart (``BootstrapPeer.conflict``): an impostor fails with ``peer_id_mismatch``,
        naming the peer ID its key belongs to."""
        host = self._host
        if host is None:
            raise RuntimeError("node is not running")
        try:
            pid = _parse_peer_id(peer_id)
        except ValueError as exc:
            return KeyProof(peer_id, multiaddr, None, "invalid_peer_id", str(exc)[:300])
        swarm = cast(Swarm, host.get_network())
        raw: Any = None
        try:
            ma = Multiaddr(multiaddr)
            named = ma.get_peer_id()
            transport_addr = ma.decapsulate_code(P_P2P) if named is not None else ma
            transport = swarm.transport_manager.transport_for_dialing(transport_addr)
            if transport is None:
                return KeyProof(peer_id, multiaddr, None, "unsupported_transport", str(ma))
            with trio.fail_after(self.config.dial_timeout_s):
                raw = await transport.dial(Multiaddr(f"{transport_addr}/p2p/{peer_id}"))
                secured = await swarm.upgrader.upgrade_security(raw, True, pid)
                raw = secured
        except Exception as exc:
            reason, detail = describe_dial_error(exc)
            holds = False if reason == "peer_id_mismatch" else None
            return KeyProof(peer_id, multiaddr, holds, reason, detail)
        finally:
            if raw is not None:
                with trio.move_on_after(1), contextlib.suppress(Exception):
                    await raw.close()
        return KeyProof(peer_id, multiaddr, True)

    async def ping(self, peer_id: str, timeout_s: float | None = None) -> float:
        """One libp2p ping (``/ipfs/ping/1.0.0``, which every host serves) over the
        existing connection; returns the round-trip time in milliseconds.

        Only the 32-byte echo is timed (``perf_counter``), not the stream opening and
        protocol negotiation before it, so the number is one network round trip. The
        library's own figure is whole milliseconds (0 on loopback), hence our own clock.
        Never dials: an unconnected peer fails at once with ``not_connected``.

        (ping override) One ping stream per peer is kept and reused while it was used
        less than ``PING_STREAM_REUSE_S`` ago (py-libp2p's responder closes an idle one
        after 10 s, go's after 60 s); a reused stream that fails is dropped and the ping
        retried once on a new one. The responder allows 2 inbound ping streams per peer;
        we hold at most one.
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
        reuse = self.config.overrides.ping
        lock = self._ping_locks.setdefault(peer_id, trio.Lock())
        async with lock:
            try:
                for attempt in (0, 1):
                    stream = await self._ping_stream(peer_id) if reuse else None
                    reused = stream is not None
                    try:
                        with trio.fail_after(timeout):
                            if stream is None:
                                stream = await host.new_stream(pid, [PING_PROTOCOL])
                            started = time.perf_counter()
                            await perform_ping_roundtrip(stream)
                            rtt_ms = (time.perf_counter() - started) * 1000
                    except trio.TooSlowError as exc:
                        await _reset(stream)
                        raise PingError(
                            peer_id, "timeout", f"no pong within {timeout:g} s"
                        ) from exc
                    except Exception as exc:
                        await _reset(stream)
                        if reused and attempt == 0:
                            continue  # a stale stream (the peer closed it): one new try
                        reason, detail = describe_dial_error(exc)
                        raise PingError(peer_id, "ping_failed", f"{reason}: {detail}") from exc
                    self._remember_rtt(peer_id, rtt_ms)
                    if reuse:
                        self._ping_streams[peer_id] = (stream, trio.current_time())
                    else:  # close ends the peer's handler loop cleanly
                        with trio.move_on_after(1), contextlib.suppress(Exception):
                            await stream.close()
                    return rtt_ms
                raise AssertionError("unreachable")  # pragma: no cover
            finally:
                if not lock.statistics().tasks_waiting:
                    self._ping_locks.pop(peer_id, None)

    def _remember_rtt(self, peer_id: str, rtt_ms: float) -> None:
        """Keep the last RTT per peer for ``mesh_view``; peers no longer connected are
        forgotten first when the table is full."""
        if len(self._last_rtt) >= MAX_KEPT_RTTS and peer_id not in self._last_rtt:
            connected = {str(p) for p in self._host.get_connected_peers()}
            self._last_rtt = {p: v for p, v in self._last_rtt.items() if p in connected}
            if len(self._last_rtt) >= MAX_KEPT_RTTS:
                self._last_rtt.clear()
        self._last_rtt[peer_id] = (rtt_ms, time.time())

    async def _ping_stream(self, peer_id: str) -> Any:
        """The kept ping stream to ``peer_id`` if it is fresh enough, else None."""
        cached = self._ping_streams.pop(peer_id, None)
        if cached is None:
            return None
        stream, last_used = cached
        if trio.current_time() - last_used > PING_STREAM_REUSE_S:
            with trio.move_on_after(1), contextlib.suppress(Exception):
                await stream.close()
            return None
        return stream

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
            trio_tasks=_count_trio_tasks(),
            private_network=self.config.private_network,
            pnet_refused=self.counters.pnet_refused_table(),
            pnet_recent=tuple(self.counters.pnet_recent),
            graylisted=tuple(sorted(str(p) for p in self._scorer.graylisted))
            if self._scorer
            else (),
            rejected=_by_reason(self.counters.rejected),
        )

    async def mesh_view(self) -> MeshView:
        """The GossipSub mesh, fanout and announced subscriptions per topic, and every open
        connection with its direction, remote address, age and last ping RTT. Reads the
        library's tables in this thread (one call, no I/O)."""
        if self._host is None or self._pubsub is None or self._gossipsub is None:
            raise RuntimeError("node is not running")
        pubsub, gossipsub = self._pubsub, self._gossipsub
        ours = set(pubsub.topic_ids)
        names = sorted(set(pubsub.peer_topics) | set(gossipsub.mesh) | set(gossipsub.fanout) | ours)
        # Our own topics first, so a flood of announced ones never hides them.
        names.sort(key=lambda t: t not in ours)
        listed = names[:MAX_MESH_VIEW_TOPICS]

        def ids(peers: Any) -> tuple[str, ...]:
            return tuple(sorted(str(p) for p in peers or ()))

        topics = tuple(
            TopicMesh(
                topic=t,
                subscribed=t in ours,
                mesh=ids(gossipsub.mesh.get(t)),
                fanout=ids(gossipsub.fanout.get(t)),
                subscribers=ids(pubsub.peer_topics.get(t)),
            )
            for t in sorted(listed)
        )
        connections = []
        for pid, conns in self._host.get_network().get_connections_map().items():
            peer = str(pid)
            rtt = self._last_rtt.get(peer)
            for conn in conns:
                if getattr(conn, "is_closed", False):
                    continue
                connections.append(
                    ConnectionView(
                        peer_id=peer,
                        direction=_direction(conn),
                        remote_addr=_remote_addr(conn),
                        opened_at=getattr(conn, "_created_at", None),
                        rtt_ms=rtt[0] if rtt else None,
                        rtt_at=rtt[1] if rtt else None,
                    )
                )
        connections.sort(key=lambda c: (c.peer_id, c.opened_at or 0.0))
        scores, scores_omitted = (
            self._scorer.peer_scores(MAX_SCORED_PEERS_LISTED) if self._scorer else ([], 0)
        )
        return MeshView(
            peer_id=self.peer_id,
            taken_at=time.time(),
            topics=topics,
            connections=tuple(connections),
            topics_omitted=len(names) - len(listed),
            scores=tuple(scores),
            scores_omitted=scores_omitted,
            graylist_threshold=(self._scorer.params.graylist_threshold if self._scorer else None),
            validating=self._validator is not None,
            rejected=_by_topic(self.counters.rejected),
            graylist_ignored_rpcs=self.counters.graylist_ignored_rpcs,
            graylistings=self.counters.graylistings,
            score_gated=self.counters.score_gated,
        )


def _by_reason(counts: Mapping[tuple[str, str], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, reason), n in dict(counts).items():
        out[reason] = out.get(reason, 0) + n
    return out


def _by_topic(counts: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (topic, reason), n in dict(counts).items():
        out.setdefault(topic, {})[reason] = n
    return out


def _direction(conn: Any) -> str:
    # py-libp2p's Direction is an IntEnum (INBOUND = 0): its name says it, its value not.
    value = getattr(conn, "direction", None)
    text = str(getattr(value, "name", None) or value or "unknown").lower()
    return text if text in ("inbound", "outbound") else "unknown"


def _remote_addr(conn: Any) -> str | None:
    """``/ip4/10.0.13.5/tcp/9000`` of the connection's far end, when the transport says."""
    try:
        endpoint = conn.muxed_conn.get_remote_address()
    except Exception:
        return None
    if not endpoint:
        return None
    host, port = endpoint[0], endpoint[1]
    family = "ip6" if ":" in str(host) else "ip4"
    return f"/{family}/{host}/tcp/{port}"


def _count_trio_tasks() -> int:
    """Tasks alive in this trio run (the root task and every nursery's children)."""
    count, stack = 0, [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


async def _reset(stream: Any) -> None:
    if stream is not None:
        with trio.move_on_after(1), contextlib.suppress(Exception):
            await stream.reset()
