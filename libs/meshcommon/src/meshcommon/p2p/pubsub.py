"""Pubsub and GossipSub as a mesh peer runs them: py-libp2p 0.8.1's, with fixes.

``MeshPubsub`` changes to ``Pubsub``:

- (always) Messages it could not queue for a subscriber are counted (upstream only logs a
  warning), so a slow consumer shows up as a number.
- (always) Writes to a peer's stream are serialised. Upstream writes RPCs from the per-peer
  send loop and directly from GossipSub (publish, control messages) at the same time;
  yamux locks each 64 KiB frame, not the whole RPC, so an RPC larger than one frame could
  be interleaved with another and corrupt the stream for good (the receiver drops the
  peer's stream: the peer looks connected but is never heard again).
- (always) New subscriptions of peers are reported (``on_subscribed``): upstream has no
  hook for it, and an agent announces itself to newcomers.
- ``continuously_read_stream`` (inline): one stream read returns every buffered byte and
  every complete RPC in it is handled; upstream reads the varint length prefix one
  ``read(1)`` at a time (each a yamux read and a window update) and spawns a task per
  message. Messages are handled in the read loop when no topic has an *async* validator
  (``push_msg`` then never waits on the network: GossipSub queues outgoing RPCs), one task
  per message otherwise, as upstream. A slow consumer now slows reading from that peer
  (yamux back-pressure) instead of piling up tasks.
- the sender's signed record is verified once per distinct bytes (record) and removed
  from the parsed RPC, so that ``GossipSub.handle_rpc`` does not verify it again.
- ``push_msg`` (novalcache, sig): the same checks in the same order; no validation-cache entry
  when the message's topics have no validator (the seen-cache already stops duplicates);
  the origin's public key cached; a message we just signed ourselves not verified again.
- ``notify_subscriptions`` (direct): messages go to a callback, not a memory channel.
- ``subscribe`` (subqueue): the subscription channel holds ``subscription_queue``
  messages; upstream reads the module global ``SUBSCRIPTION_CHANNEL_SIZE`` (32), which a
  node must not set for every node of the process.
- ``handle_sending_messages`` (coalesce): RPCs already queued for a peer go out in one
  stream write: the same varint-delimited RPCs in the same order, in fewer frames.
- (novalcache) synchronous topic validators run directly, without the validation cache (the
  cache spares re-running an expensive *async* validator on a duplicate; the seen-cache
  already stops valid duplicates, and a pure synchronous check costs less than the cache
  entry). Async validators still go through ``validate_msg``. A message its forwarder's
  score keeps out (``allow_publish``, below the publish threshold) is counted
  (``NodeCounters.score_gated``; upstream drops it with a debug log).
- (graylist) what we receive is not gated by the publish threshold. py-libp2p drops a
  message whose forwarder scores below ``publish_threshold`` before validating it, so the
  invalid-message counter of a peer sending garbage stops growing there and the peer
  never reaches the graylist threshold below it (its garbage is then dropped uncounted).
  In the spec the publish threshold decides whom *we* publish to; what a peer sends us is
  governed by the graylist threshold alone (go-libp2p-pubsub: ``AcceptFrom``).
- (graylist) the RPCs of a peer below the graylist threshold are ignored before they are
  parsed, and counted (upstream handles them all: its graylist only refuses GRAFTs and
  gossip). With ``inline`` off the reader keeps upstream's framing but goes through the
  same check. The scorer is ``scoring.MeshPeerScorer``; see that module.

``MeshGossipSub`` changes to ``GossipSub``:

- (always) Messages dropped on the way out are counted (upstream: a debug log).
- ``send_rpc`` (outqueue): the per-peer outbound queue holds ``outbound_queue`` RPCs, not
  32 (``RpcQueue`` takes its size only as a constructor default).
- ``publish`` (noforward, record): the forwarding path, run for every received message,
  works out the target peers first; with nobody to send to (a monitor connected to the
  publisher only) the RPC, the envelope and the per-peer loops are skipped, while the
  bookkeeping later gossip depends on is kept (mcache for IHAVE/IWANT, fanout times,
  IDONTWANT, observers, spam and equivocation checks). Our signed record comes from a
  short cache instead of ``host.get_addrs()`` per message.
- (heard) a duplicate a peer sends us proves it has the message: its ID is kept for that
  peer (within ``idontwant_budget`` per heartbeat, two heartbeats, as IDONTWANT), and
  ``MeshPubsub.handle_sending_messages`` takes the message out of what is still queued
  for the peer. Under load the copies of a message reach an agent in the same wake-up:
  the first is forwarded to every mesh peer, and the peers whose copies came with it need
  not get it back (counted ``idontwant["heard"]``). Nothing new on the wire.
- (steadymesh) the heartbeat and the mesh bounds stay as configured: upstream's
  "adaptive gossip" (on by default, in no spec) rates the network's health every 30 s and
  with scores that are never positive (ours: only invalid messages weigh) always finds it
  poor, so it stretches the 1 s heartbeat to 30-60 s (mesh repair, IHAVE gossip and the
  message cache then run once a minute) and raises D_lo and D_hi. Opportunistic grafting
  as GossipSub v1.1 has it (every ``OPPORTUNISTIC_GRAFT_TICKS`` heartbeats, only when the
  mesh's median score is below ``OPPORTUNISTIC_GRAFT_THRESHOLD``, peers scoring above that
  median); upstream grafts 2 more peers at *every* heartbeat when scores tie, so the mesh
  swells to D_hi, is pruned to D and swells again.
- GossipSub v1.2 IDONTWANT (idontwant): upstream announces every message, however small,
  with one RPC per mesh peer (the forwarder included), keeps 10 IDs per peer (more replace
  arbitrary ones) and clears them every heartbeat. Here as js-libp2p does: only messages
  of at least ``idontwant_min_bytes``, to v1.2 mesh peers but the forwarder and origin;
  ``idontwant_budget`` IDs per peer per heartbeat (the rest counted), kept for two
  heartbeats; honoured when forwarding and, in ``MeshPubsub.handle_sending_messages``,
  for messages already queued for the peer. Every step counted (``NodeCounters.idontwant``).

Both classes are built with every code path above off (upstream behaviour); the one door,
``meshcommon.p2p.overrides``, switches each on (``enable``) by its flag. The overridden
methods copy upstream logic: the upstream sources they copy are fingerprinted
(``overrides.UPSTREAM``, tests/p2p/test_fingerprints.py). Upstream fixes: the same changes
in ``Pubsub`` and ``GossipSub``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import statistics
import time
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import trio
from libp2p.exceptions import ValidationError
from libp2p.io.exceptions import IOException, MessageTooLarge
from libp2p.network.connection.exceptions import RawConnError
from libp2p.network.stream.exceptions import StreamClosed, StreamEOF, StreamError, StreamReset
from libp2p.peer.id import ID
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.pubsub import floodsub
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import GossipsubEvent, Pubsub
from libp2p.pubsub.subscription import TrioSubscriptionAPI
from libp2p.utils.varint import encode_uvarint

from meshcommon.logs import RateLimitedLog
from meshcommon.p2p.records import OwnRecordCache, SenderRecordCache, SignatureVerifier
from meshcommon.p2p.scoring import MeshPeerScorer
from meshcommon.p2p.types import NO_OVERRIDES, NodeCounters, P2POverrides

log = logging.getLogger(__name__)

_READ_SIZE = 64 * 1024
# A message ID is the origin's peer ID and the seqno (~46 bytes here, go and js alike); an
# IDONTWANT entry longer than this is no ID of ours and is not kept.
MAX_MESSAGE_ID_BYTES = 256
_COALESCE_BYTES = 48 * 1024  # stays within one yamux frame (64 KiB - header)
# (steadymesh) GossipSub v1.1 opportunistic grafting, go-libp2p-pubsub's defaults: every
# 60 heartbeats, up to 2 peers scoring above the mesh's median, when that median is below
# the threshold. Our scores are 0 or negative (only P4, invalid messages, weighs): a
# median below 0 means the mesh holds peers that sent invalid messages.
OPPORTUNISTIC_GRAFT_TICKS = 60
OPPORTUNISTIC_GRAFT_PEERS = 2
OPPORTUNISTIC_GRAFT_THRESHOLD = 0.0


def _delimited(rpc: rpc_pb2.RPC) -> bytes:
    body = rpc.SerializeToString()
    return bytes(encode_uvarint(len(body))) + body


def peer_text(id_bytes: bytes) -> str:
    """The base58 text of a peer ID in its wire form (hex if it is not one)."""
    try:
        return str(ID(id_bytes).to_base58())
    except Exception:
        return id_bytes.hex()


class MeshPubsub(Pubsub):
    def __init__(
        self,
        *args: Any,
        on_drop: Callable[[str], None],
        on_subscribed: Callable[[str, str], None] | None = None,
        deliver: Callable[[str, rpc_pb2.Message], None] | None = None,
        counters: NodeCounters | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._overrides: P2POverrides = NO_OVERRIDES  # switched on by overrides.apply
        self.subscription_queue: int | None = None  # (subqueue) None: upstream's global
        self._counters = counters if counters is not None else NodeCounters()
        self._on_drop = on_drop
        self._on_subscribed = on_subscribed
        self._deliver = deliver
        self._records = SenderRecordCache()
        self._sigs = SignatureVerifier()
        self._write_locks: weakref.WeakKeyDictionary[Any, trio.Lock] = weakref.WeakKeyDictionary()
        # (stalestream) each peer's connection its latest inbound pubsub stream came on:
        # what it told us there (its subscriptions) is current while that one is open.
        self._inbound_conn: dict[ID, Any] = {}

    def enable(self, flag: str) -> None:
        """Switch one override's code path on (``overrides.apply``)."""
        self._overrides = replace(self._overrides, **{flag: True})

    async def subscribe(self, topic_id: str) -> Any:
        """``Pubsub.subscribe`` (0.8.1, line for line) with this node's channel size."""
        size = self.subscription_queue
        if size is None:
            return await super().subscribe(topic_id)
        if topic_id in self.topic_ids:
            return self.subscribed_topics_receive[topic_id]
        send_channel, receive_channel = trio.open_memory_channel[rpc_pb2.Message](size)
        subscription = TrioSubscriptionAPI(
            receive_channel,
            unsubscribe_fn=functools.partial(self.unsubscribe, topic_id),
        )
        self.subscribed_topics_send[topic_id] = send_channel
        self.subscribed_topics_receive[topic_id] = subscription
        packet, subopt = self._build_announce_rpc(topic_id, subscribe=True)
        await self.message_all_peers(packet.SerializeToString(), announce=subopt)
        await self.router.join(topic_id)
        return subscription

    def handle_subscription(self, origin_id: ID, sub_message: rpc_pb2.RPC.SubOpts) -> None:
        topic = sub_message.topicid
        known = origin_id in self.peer_topics.get(topic, ())
        super().handle_subscription(origin_id, sub_message)
        if (
            self._on_subscribed is not None
            and sub_message.subscribe
            and not known
            and origin_id in self.peer_topics.get(topic, ())
        ):
            self._on_subscribed(topic, peer_text(origin_id.to_bytes()))

    async def write_msg(self, stream: Any, rpc_msg: rpc_pb2.RPC) -> bool:
        async with self._write_lock(stream):
            return bool(await super().write_msg(stream, rpc_msg))

    def _write_lock(self, stream: Any) -> trio.Lock:
        lock = self._write_locks.get(stream)
        if lock is None:
            lock = self._write_locks[stream] = trio.Lock()
        return lock

    # -- reading ----------------------------------------------------------------------
    async def continuously_read_stream(self, stream: Any) -> None:
        if self._overrides.stalestream:
            self._inbound_conn[stream.muxed_conn.peer_id] = stream.muxed_conn
        if not self._overrides.inline:
            if self._overrides.record or self._overrides.graylist:
                return await self._read_loop_upstream_framing(stream)
            return await super().continuously_read_stream(stream)
        peer_id = stream.muxed_conn.peer_id
        buf = bytearray()
        limit = self.max_inbound_rpc_size
        try:
            while self.manager.is_running:
                chunk = await stream.read(_READ_SIZE)
                if not chunk:
                    return
                buf += chunk
                while buf:
                    # uvarint length prefix (at most 10 bytes)
                    length = shift = i = 0
                    while True:
                        if i >= len(buf):
                            length = -1
                            break
                        b = buf[i]
                        length |= (b & 0x7F) << shift
                        i += 1
                        if not b & 0x80:
                            break
                        shift += 7
                        if i >= 10:
                            raise MessageTooLarge("varint length prefix too long")
                    if length < 0:
                        break  # need more bytes for the prefix
                    if length > limit:
                        raise MessageTooLarge(
                            f"Message length {length} exceeds maximum allowed {limit}"
                        )
                    if len(buf) - i < length:
                        break  # need more bytes for the body
                    incoming = bytes(buf[i : i + length])
                    del buf[: i + length]
                    await self._handle_incoming_rpc(stream, peer_id, incoming)
                # One schedule point per batch keeps the loop fair to other tasks.
                await trio.lowlevel.checkpoint()
        except MessageTooLarge as error:
            log.warning("Inbound pubsub RPC from peer %s exceeded size limit: %s", peer_id, error)
            with contextlib.suppress(Exception):
                await stream.reset()
            self._handle_dead_peer(peer_id)
        except StreamEOF:
            pass
        except StreamError:
            pass
        except (IOException, RawConnError):
            pass

    async def _read_loop_upstream_framing(self, stream: Any) -> None:
        # Upstream framing (byte-wise varint, a task per message) through our RPC handler:
        # the "record" or "graylist" override without "inline".
        from libp2p.utils.varint import read_varint_prefixed_bytes_limited

        peer_id = stream.muxed_conn.peer_id
        try:
            while self.manager.is_running:
                incoming = await read_varint_prefixed_bytes_limited(
                    stream, self.max_inbound_rpc_size
                )
                await self._handle_incoming_rpc(stream, peer_id, incoming, spawn=True)
        except MessageTooLarge:
            with contextlib.suppress(Exception):
                await stream.reset()
            self._handle_dead_peer(peer_id)
        except (StreamEOF, StreamError, IOException, RawConnError):
            pass

    def _graylisted(self, peer_id: ID) -> bool:
        """(graylist) True, and counted, when ``peer_id`` is below the graylist threshold:
        its RPC is ignored whole (messages, subscriptions, control)."""
        if not self._overrides.graylist:
            return False
        scorer = getattr(self.router, "scorer", None)
        if not isinstance(scorer, MeshPeerScorer) or peer_id not in scorer.graylisted:
            return False
        scorer.ignored(peer_id)
        self._counters.graylist_ignored_rpcs += 1
        return True

    async def _handle_incoming_rpc(
        self, stream: Any, peer_id: ID, incoming: bytes, spawn: bool = False
    ) -> None:
        if self._graylisted(peer_id):
            return
        rpc = rpc_pb2.RPC()
        rpc.ParseFromString(incoming)
        if rpc.HasField("senderRecord"):
            if self._overrides.record:
                ok = self._records.consume(rpc.senderRecord, self.host, peer_id)
                if ok:
                    # Verified (or identical to a verified one): GossipSub.handle_rpc
                    # would verify it again; it has nothing else to read from it.
                    rpc.ClearField("senderRecord")
            else:
                from libp2p.pubsub.utils import maybe_consume_signed_record

                ok = maybe_consume_signed_record(rpc, self.host, peer_id)
            if not ok:
                log.error("Received an invalid-signed-record, ignoring the incoming msg")
                return
        if rpc.publish:
            self._counters.messages_in[peer_id] += len(rpc.publish)  # neighbours report
            inline = not spawn and self._overrides.inline and not self._has_async_validators()
            for msg in rpc.publish:
                if not self._is_subscribed_to_msg(msg):
                    continue
                if inline:
                    try:
                        await self.push_msg(peer_id, msg)
                    except Exception:
                        log.exception("push_msg failed for a message from %s", peer_id)
                elif self.manager.is_running:
                    self.manager.run_task(self.push_msg, peer_id, msg)
        if rpc.subscriptions:
            if len(rpc.subscriptions) > self.max_subscriptions_per_rpc:
                log.warning(
                    "Peer %s sent %d subscriptions exceeding limit %d, rejecting subscriptions",
                    peer_id,
                    len(rpc.subscriptions),
                    self.max_subscriptions_per_rpc,
                )
            else:
                for sub in rpc.subscriptions:
                    self.handle_subscription(peer_id, sub)
        if rpc.HasField("control"):
            await self.router.handle_rpc(rpc, peer_id)
        if stream.metric_send_channel is not None:
            event = GossipsubEvent()
            event.peer_id = peer_id.pretty()
            event.message_size = len(incoming)
            event.publish = bool(rpc.publish)
            event.subopts = bool(rpc.subscriptions)
            event.control = rpc.HasField("control")
            await stream.metric_send_channel.send(event)

    # -- writing ----------------------------------------------------------------------
    async def handle_sending_messages(self, peer_id: ID, stream: Any, queue: Any) -> None:
        """Per-peer send loop (replaces ``Pubsub.handle_sending_messages``).

        Upstream writes one RPC per ``stream.write``: under load every forwarded message
        becomes its own yamux frame, noise message and ``send()`` syscall, and the peer
        pays the same again to read it. Here, after waking up for one RPC, every RPC
        already queued (priority first, as ``PriorityQueue.pop`` orders them) is
        appended, up to ``_COALESCE_BYTES``, and the lot is written at once. The bytes
        on the stream are exactly the same varint-delimited RPCs in the same order; only
        their grouping into frames changes, which pubsub readers must not (and the go,
        js and py readers do not) depend on."""
        if not self._overrides.coalesce:
            return await super().handle_sending_messages(peer_id, stream, queue)
        try:
            while True:
                rpc = await queue.pop()
                if rpc is None:
                    return
                strip = self._stripper(peer_id)
                parts: list[bytes] = []
                size = 0
                inner = queue._queue
                while True:
                    kept = rpc if strip is None else strip(peer_id, rpc)
                    if kept is not None:
                        parts.append(_delimited(kept))
                        size += len(parts[-1])
                    if size >= _COALESCE_BYTES or not len(inner):
                        break
                    rpc = inner.pop()
                    if rpc is None:
                        break
                if parts and not await self._write_bytes(stream, b"".join(parts)):
                    return
        except Exception:
            log.debug("sending loop for %s terminated with error", peer_id)
            self._handle_dead_peer(peer_id)

    def _stripper(self, peer_id: ID) -> Callable[[ID, rpc_pb2.RPC], rpc_pb2.RPC | None] | None:
        """(idontwant) What takes out of a queued RPC the messages the peer said
        (IDONTWANT) it has since they were queued: under load a queue holds messages for
        a while, and the peer's IDONTWANT often arrives in that time. None: nothing to
        take out (the override is off, or the peer said nothing)."""
        router = self.router
        fix = self._overrides
        if not (fix.idontwant or fix.heard) or not isinstance(router, MeshGossipSub):
            return None
        return router.strip_unwanted if router.has_unwanted(peer_id) else None

    async def _write_bytes(self, stream: Any, data: bytes) -> bool:
        """``Pubsub.write_msg`` for pre-encoded RPCs (same per-stream lock as
        ``_MeshPubsub.write_msg``, same error handling as upstream)."""
        lock = self._write_locks.get(stream)
        if lock is None:
            lock = self._write_locks[stream] = trio.Lock()
        try:
            async with lock:
                await stream.write(data)
            return True
        except (StreamClosed, StreamReset):
            self._handle_dead_peer(stream.muxed_conn.peer_id)
            return False

    def _has_async_validators(self) -> bool:
        tv = self.topic_validators
        return bool(tv) and any(v.is_async for v in tv.values())

    def _handle_dead_peer(self, peer_id: ID) -> None:
        self._records.forget(peer_id)
        if self._overrides.stalestream and self._only_stale_outbound(peer_id):
            self._move_outbound(peer_id)
            return
        self._inbound_conn.pop(peer_id, None)
        super()._handle_dead_peer(peer_id)

    def connection_closed(self, peer_id: ID) -> None:
        """One of the peer's connections was closed as dead (``liveness``): if our
        outbound stream was on it, handle that now, not at the next write to it (a quiet
        peer may have none for a long time)."""
        out = self.peers.get(peer_id)
        if out is not None and not self._is_live(peer_id, getattr(out, "muxed_conn", None)):
            self._handle_dead_peer(peer_id)

    def _only_stale_outbound(self, peer_id: ID) -> bool:
        """(stalestream) Our outbound stream to the peer died with its connection (closed,
        or dropped by the swarm for a newer one) while the peer already speaks to us on a
        newer, open one (a host that vanished and came back with the same key): what it
        told us there still holds."""
        inbound = self._inbound_conn.get(peer_id)
        if inbound is None or getattr(inbound, "is_closed", True):
            return False
        out = self.peers.get(peer_id)
        if out is None:
            return False
        conn = getattr(out, "muxed_conn", None)
        return conn is not inbound and not self._is_live(peer_id, conn)

    def outbound_conn(self, peer_id: ID) -> Any:
        """The muxed connection our outbound pubsub stream to the peer is on, if any."""
        out = self.peers.get(peer_id)
        return getattr(out, "muxed_conn", None) if out is not None else None

    def _is_live(self, peer_id: ID, muxed: Any) -> bool:
        """``muxed`` is open and still one of the swarm's connections to the peer."""
        if muxed is None or getattr(muxed, "is_closed", False):
            return False
        conns = self.host.get_network().get_connections(peer_id)
        return any(getattr(c, "muxed_conn", None) is muxed for c in conns)

    def _move_outbound(self, peer_id: ID) -> None:
        """(stalestream) Drop the dead outbound stream and open one on the live connection
        (upstream's retry); the peer's subscriptions and its mesh place are kept."""
        del self.peers[peer_id]
        queue = self.peer_queues.pop(peer_id, None)
        if queue is not None:
            queue.close()
        moved = self._counters.pubsub_streams_moved = self._counters.pubsub_streams_moved + 1
        if moved in (1, 10, 100) or moved % 1000 == 0:
            log.info(
                "pubsub stream to %s moved to its newer connection (%d moved so far)",
                peer_id,
                moved,
            )
        self._schedule_peer_stream_retry(peer_id)

    # -- push / validate --------------------------------------------------------------
    async def push_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        fix = self._overrides
        if not (fix.novalcache or fix.sig or fix.graylist or fix.heard):
            return await super().push_msg(msg_forwarder, msg)
        # Same checks, same order as Pubsub.push_msg in 0.8.1.
        blacklisted = self.blacklisted_peers
        origin = ID(msg.from_id)
        if blacklisted and (msg_forwarder in blacklisted or origin in blacklisted):
            return
        msg_id = self._msg_id_constructor(msg)
        if self.seen_messages.has(msg_id):
            router = self.router
            if fix.heard and isinstance(router, MeshGossipSub):
                router.heard(msg_forwarder, msg_id)  # it has it: not sent it again
            return
        scorer = getattr(self.router, "scorer", None)
        # (graylist) no publish-threshold gate on what we receive: see the module.
        if scorer is not None and not fix.graylist:
            try:
                if not scorer.allow_publish(msg_forwarder, list(msg.topicIDs)):
                    self._counters.score_gated += 1
                    return
            except Exception:
                pass
        self_id = self.host.get_id()
        local = msg_forwarder == self_id and origin == self_id
        if self.strict_signing and not (local and self._overrides.sig):
            # (sig) a message we publish ourselves was signed a microsecond ago with our
            # own key: upstream verifies it anyway; we skip only that case.
            if self._overrides.sig:
                valid = self._sigs.verify(msg)
            else:
                from libp2p.pubsub.validators import signature_validator

                valid = signature_validator(msg)
            if not valid:
                log.debug("Signature validation failed for a message from %s", msg_forwarder)
                return
        if (self.topic_validators or not self._overrides.novalcache) and not await self._valid(
            msg_forwarder, msg
        ):
            if scorer is not None:
                try:
                    for topic in msg.topicIDs:
                        scorer.on_invalid_message(msg_forwarder, topic)
                except Exception:
                    pass
            return
        self.seen_messages.add(msg_id)
        if scorer is not None:
            try:
                for topic in msg.topicIDs:
                    scorer.on_first_delivery(msg_forwarder, topic)
            except Exception:
                pass
        if origin == self_id and msg_forwarder != self_id:
            return
        self.notify_subscriptions(msg)
        await self.router.publish(msg_forwarder, msg)

    async def _valid(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> bool:
        """The topic validators' verdict. (novalcache) synchronous validators run here, without
        the validation cache; otherwise (or with an async one) ``validate_msg`` as
        upstream."""
        if self._overrides.novalcache and not self._has_async_validators():
            validators = self.topic_validators
            for topic in msg.topicIDs:
                tv = validators.get(topic)
                if tv is not None and not tv.validator(msg_forwarder, msg):
                    return False
            return True
        try:
            await self.validate_msg(msg_forwarder, msg)
        except ValidationError:
            return False
        return True

    def notify_subscriptions(self, publish_message: rpc_pb2.Message) -> None:
        """Hand the message to our subscriptions. (direct) straight to ``deliver``, in
        this task; otherwise through the subscription's channel, as upstream, counting
        what a full channel drops (upstream only logs it)."""
        if self._deliver is not None and self._overrides.direct:
            for topic in publish_message.topicIDs:
                if topic in self.subscribed_topics_receive:
                    self._deliver(topic, publish_message)
            return
        for topic in publish_message.topicIDs:
            if topic in self.topic_ids:
                try:
                    self.subscribed_topics_send[topic].send_nowait(publish_message)
                except trio.WouldBlock:
                    self._on_drop(topic)


class MeshGossipSub(GossipSub):
    def __init__(
        self,
        *args: Any,
        on_drop: Callable[[str, int], None],
        counters: NodeCounters | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._overrides: P2POverrides = NO_OVERRIDES  # switched on by overrides.apply
        self._on_outbound_drop = on_drop
        self._counters = counters if counters is not None else NodeCounters()
        self.outbound_queue: int | None = None  # (outqueue) None: upstream's 32
        self._own_record = OwnRecordCache()
        # (idontwant) set by overrides.apply from NodeConfig
        self.idontwant_min_bytes = 512
        self.idontwant_budget = 512
        # (idontwant) what each peer said it has: this heartbeat's IDs are upstream's
        # dont_send_message_ids, the previous heartbeat's are kept here (an ID that came
        # just before a heartbeat still counts for the message in flight).
        self._unwanted_before: dict[ID, set[bytes]] = {}
        self._idontwant_log = RateLimitedLog(log, 60.0)
        self._graft_ticks: dict[str, int] = {}  # (steadymesh) heartbeats per topic
        # (heard) message IDs each peer sent us as duplicates: this heartbeat's, the last's
        self._heard: dict[ID, set[bytes]] = {}
        self._heard_before: dict[ID, set[bytes]] = {}

    def enable(self, flag: str) -> None:
        """Switch one override's code path on (``overrides.apply``)."""
        self._overrides = replace(self._overrides, **{flag: True})
        if flag == "steadymesh":
            # Every upstream use of the adaptive bounds and heartbeat is behind this flag.
            self.adaptive_gossip_enabled = False
            self.adaptive_degree_low, self.adaptive_degree_high = self.degree_low, self.degree_high

    def _perform_opportunistic_grafting(self, topic: str, peers_to_graft: Any) -> int:
        """(steadymesh) GossipSub v1.1 opportunistic grafting: every
        ``OPPORTUNISTIC_GRAFT_TICKS`` heartbeats, if the median score of the topic's mesh
        is below ``OPPORTUNISTIC_GRAFT_THRESHOLD``, graft up to
        ``OPPORTUNISTIC_GRAFT_PEERS`` subscribed peers (not backed off, not direct) scoring
        above that median. The grafting itself is upstream's (mesh, notification,
        GRAFT queued, scorer told)."""
        if not self._overrides.steadymesh:
            return int(super()._perform_opportunistic_grafting(topic, peers_to_graft))
        ticks = self._graft_ticks[topic] = self._graft_ticks.get(topic, 0) + 1
        scorer, pubsub = self.scorer, self.pubsub
        if ticks % OPPORTUNISTIC_GRAFT_TICKS or scorer is None or pubsub is None:
            return 0
        mesh = self.mesh.get(topic)
        if not mesh:
            return 0
        median = statistics.median(scorer.score(p, [topic]) for p in mesh)
        if median >= OPPORTUNISTIC_GRAFT_THRESHOLD:
            return 0
        candidates = [
            p
            for p in pubsub.peer_topics.get(topic, ())
            if p not in mesh
            and p not in self.direct_peers
            and not self._check_back_off(p, topic)
            and scorer.score(p, [topic]) > median
        ]
        chosen = random.sample(candidates, min(OPPORTUNISTIC_GRAFT_PEERS, len(candidates)))
        for peer in chosen:
            mesh.add(peer)
            self._notify_mesh_peer_added(peer, topic)
            peers_to_graft[peer].append(topic)
            scorer.on_join_mesh(peer, topic)
        return len(chosen)

    def use_scorer(self, scorer: MeshPeerScorer) -> None:
        """Replace the ``PeerScorer`` GossipSub built from its ``score_params``."""
        self.scorer = scorer

    def add_peer(self, peer_id: ID, protocol_id: Any) -> None:
        super().add_peer(peer_id, protocol_id)
        if isinstance(self.scorer, MeshPeerScorer):
            self.scorer.add_peer(peer_id)  # a retained score is its again

    def send_rpc(self, peer_id: ID, rpc: rpc_pb2.RPC, priority: bool = False) -> None:
        size = self.outbound_queue
        if size is not None and self.pubsub is not None:
            # (outqueue) RpcQueue takes its size only as a constructor default; its inner
            # queue's max_size is a plain attribute, so raise it before the first push.
            queue = self.pubsub.peer_queues.get(peer_id)
            if queue is not None and queue._queue.max_size < size:
                queue._queue.max_size = size
        if rpc.publish and isinstance(self.pubsub, MeshPubsub):  # neighbours report
            self.pubsub._counters.messages_out[peer_id] += len(rpc.publish)
        super().send_rpc(peer_id, rpc, priority)

    def _handle_dropped_rpc(self, peer_id: ID, rpc: rpc_pb2.RPC, reason: str) -> None:
        if len(rpc.publish):
            self._on_outbound_drop(reason, len(rpc.publish))
        super()._handle_dropped_rpc(peer_id, rpc, reason)

    def _may_have_targets(self, topic_ids: list[str], exclude: tuple[ID, ID]) -> bool:
        """Cheap superset test of ``_get_peers_to_send``: False only when that function
        would certainly return nobody (it scores every mesh peer, per message, before
        excluding the forwarder). Topics without a mesh (fanout) return True so that
        upstream's fanout bookkeeping runs unchanged."""
        pubsub = self.pubsub
        assert pubsub is not None
        for topic in topic_ids:
            subscribed = pubsub.peer_topics.get(topic)
            if subscribed is None:
                continue
            if any(p not in exclude for p in self.direct_peers):
                return True
            mesh = self.mesh.get(topic)
            if mesh is None:
                return True
            if any(p not in exclude for p in mesh):
                return True
            for p in subscribed:
                if p not in exclude and self.peer_protocol.get(p) == floodsub.PROTOCOL_ID:
                    return True
        return False

    async def publish(self, msg_forwarder: ID, pubsub_msg: rpc_pb2.Message) -> None:
        fix = self._overrides
        if not (fix.noforward or fix.record or fix.idontwant):
            return await super().publish(msg_forwarder, pubsub_msg)
        if not self._check_spam_protection(msg_forwarder, pubsub_msg):
            return
        if not self._check_equivocation(pubsub_msg):
            return
        self.mcache.put(pubsub_msg)
        pubsub = self.pubsub
        if pubsub is None:
            return
        msg_id = pubsub.get_message_id(pubsub_msg)
        origin = ID(pubsub_msg.from_id)
        topic_ids = list(pubsub_msg.topicIDs)
        targets: list[ID] = []
        if not fix.noforward or self._may_have_targets(topic_ids, (msg_forwarder, origin)):
            targets = [
                p
                for p in self._get_peers_to_send(
                    topic_ids,
                    msg_forwarder=msg_forwarder,
                    origin=origin,
                    # (idontwant) filtered below, where what it spares is counted
                    msg_id=None if fix.idontwant else msg_id,
                )
                if p in pubsub.peers
                and (self.scorer is None or self.scorer.allow_publish(p, topic_ids))
            ]
            if fix.idontwant and targets:
                wanted = [p for p in targets if not self.unwanted(p, msg_id)]
                self._counters.idontwant["honoured"] += len(targets) - len(wanted)
                targets = wanted
        # Peers upstream would queue while identify / subscription exchange is pending.
        pending: list[ID] = []
        skip = (msg_forwarder, origin)
        for topic in topic_ids:
            subscribed = pubsub.peer_topics.get(topic, ())
            for peer_id in subscribed:
                if peer_id in skip or peer_id in pending:
                    continue
                if peer_id not in self.peer_protocol and peer_id not in self.direct_peers:
                    pending.append(peer_id)
            for peer_id in pubsub.peers:
                if peer_id in skip or peer_id in self.direct_peers or peer_id in pending:
                    continue
                if peer_id not in subscribed:
                    pending.append(peer_id)

        if fix.idontwant:
            self._announce_idontwant(msg_id, pubsub_msg, skip)
        else:
            await self._emit_idontwant_for_message(msg_id, pubsub_msg.topicIDs)
        await self._notify_observers(pubsub_msg.topicIDs, msg_id)

        if targets or pending or not fix.noforward:
            rpc_msg = rpc_pb2.RPC(publish=[pubsub_msg])
            if isinstance(pubsub, Pubsub):
                if fix.record:
                    rpc_msg.senderRecord = self._own_record.get(pubsub.host)
                else:
                    rpc_msg.senderRecord, _ = env_to_send_in_RPC(pubsub.host)
            for peer_id in targets:
                self.send_rpc(peer_id, rpc_msg)
            now = time.time()
            for peer_id in pending:
                self._prune_pending_messages(peer_id)
                self._pending_messages[peer_id].append((now, rpc_msg))

        now_i = int(time.time())
        for topic in topic_ids:
            self.time_since_last_publish[topic] = now_i
            if self.adaptive_gossip_enabled:
                self.recent_message_deliveries[topic].append(time.time())

    # -- GossipSub v1.2 IDONTWANT (idontwant) -----------------------------------------
    def _announce_idontwant(self, msg_id: bytes, msg: rpc_pb2.Message, skip: tuple[ID, ID]) -> None:
        """Tell our v1.2 mesh peers of the message's topics that we have it, as js-libp2p
        does: only for a message of at least ``idontwant_min_bytes`` (for a small one the
        announcement costs the peer about what the duplicate would), not to its
        forwarder or origin (they have it), not for our own publishes (js and go announce
        what they receive), one RPC shared by all, queued first (priority)
        so that it leaves in the same write as anything else queued for that peer."""
        if len(msg.data) < self.idontwant_min_bytes or self.pubsub is None:
            return
        if skip[0] == self.pubsub.my_id:
            return  # our own publish: the peers get the message itself, nothing was received
        peers: set[ID] = set()
        for topic in msg.topicIDs:
            peers.update(self.mesh.get(topic, ()))
        peers.difference_update(skip)
        peers = {p for p in peers if self.peer_protocol.get(p) == PROTOCOL_ID_V12}
        if not peers:
            return
        rpc = rpc_pb2.RPC(
            control=rpc_pb2.ControlMessage(
                idontwant=[rpc_pb2.ControlIDontWant(messageIDs=[msg_id])]
            )
        )
        for peer_id in peers:
            self.send_rpc(peer_id, rpc, priority=True)
        self._counters.idontwant["sent"] += len(peers)

    async def handle_idontwant(
        self, idontwant_msg: rpc_pb2.ControlIDontWant, sender_peer_id: ID
    ) -> None:
        """(idontwant) Keep what the peer says it has, within ``idontwant_budget`` IDs
        per peer per heartbeat (upstream: 10 IDs in all, the rest replacing arbitrary
        kept ones, silently); what is beyond the budget is counted and logged once a
        minute. IDs of unknown messages are kept too: the message may be on its way."""
        if not self._overrides.idontwant:
            return await super().handle_idontwant(idontwant_msg, sender_peer_id)
        kept = self.dont_send_message_ids.setdefault(sender_peer_id, set())
        ids = idontwant_msg.messageIDs
        room = max(0, self.idontwant_budget - len(kept))
        fresh = [m for m in ids[:room] if len(m) <= MAX_MESSAGE_ID_BYTES]
        kept.update(fresh)
        self._counters.idontwant["received"] += len(fresh)
        over = len(ids) - len(fresh)
        if over:
            self._counters.idontwant["over_budget"] += over
            self._idontwant_log.warning(
                ("idontwant_over_budget", sender_peer_id),
                "IDONTWANT from %s: %d message IDs beyond the budget of %d per heartbeat "
                "(or longer than %d bytes) ignored",
                sender_peer_id,
                over,
                self.idontwant_budget,
                MAX_MESSAGE_ID_BYTES,
            )

    def _prune_idontwant_entries(self) -> None:
        """(idontwant) Each heartbeat, this heartbeat's IDs become the previous ones and
        the previous ones go (upstream clears them at once). (heard) the same for the
        duplicates heard."""
        if self._overrides.heard:
            self._heard_before, self._heard = {p: ids for p, ids in self._heard.items() if ids}, {}
        if not self._overrides.idontwant:
            return super()._prune_idontwant_entries()
        self._unwanted_before = {p: ids for p, ids in self.dont_send_message_ids.items() if ids}
        for peer_id in self.dont_send_message_ids:
            self.dont_send_message_ids[peer_id] = set()

    def unwanted(self, peer_id: ID, msg_id: bytes) -> bool:
        """Whether ``peer_id`` said (IDONTWANT) it has the message ``msg_id``."""
        now = self.dont_send_message_ids.get(peer_id)
        if now and msg_id in now:
            return True
        before = self._unwanted_before.get(peer_id)
        return before is not None and msg_id in before

    def heard(self, peer_id: ID, msg_id: bytes) -> None:
        """(heard) ``peer_id`` sent us the message ``msg_id`` (a duplicate): it has it.
        Kept within ``idontwant_budget`` IDs per peer per heartbeat; beyond, the peer
        simply gets the message as without this override."""
        kept = self._heard.get(peer_id)
        if kept is None:
            kept = self._heard[peer_id] = set()
        if len(kept) < self.idontwant_budget and len(msg_id) <= MAX_MESSAGE_ID_BYTES:
            kept.add(msg_id)

    def had(self, peer_id: ID, msg_id: bytes) -> bool:
        """(heard) Whether ``peer_id`` sent us the message ``msg_id``."""
        now = self._heard.get(peer_id)
        if now and msg_id in now:
            return True
        before = self._heard_before.get(peer_id)
        return before is not None and msg_id in before

    def has_unwanted(self, peer_id: ID) -> bool:
        """Whether ``peer_id`` said (IDONTWANT) it has any message, or (heard) sent us
        one, in this heartbeat or the previous one."""
        return bool(
            self.dont_send_message_ids.get(peer_id)
            or self._unwanted_before.get(peer_id)
            or self._heard.get(peer_id)
            or self._heard_before.get(peer_id)
        )

    def strip_unwanted(self, peer_id: ID, rpc: rpc_pb2.RPC) -> rpc_pb2.RPC | None:
        """(idontwant, heard) ``rpc`` without the messages ``peer_id`` said it has, or sent
        us, since the RPC was queued (None: nothing left to send); counted as honoured or
        heard."""
        if not rpc.publish or not self.has_unwanted(peer_id):
            return rpc
        pubsub = self.pubsub
        assert pubsub is not None
        keep = []
        for m in rpc.publish:
            msg_id = pubsub.get_message_id(m)
            if self.unwanted(peer_id, msg_id):
                self._counters.idontwant["honoured"] += 1
            elif self.had(peer_id, msg_id):
                self._counters.idontwant["heard"] += 1
            else:
                keep.append(m)
        dropped = len(rpc.publish) - len(keep)
        if not dropped:
            return rpc
        if not keep and not rpc.subscriptions and not rpc.HasField("control"):
            return None
        slim = rpc_pb2.RPC()
        slim.CopyFrom(rpc)
        del slim.publish[:]
        slim.publish.extend(keep)
        return slim
