"""``MeshNode``: one libp2p host with GossipSub on the mesh topics, the package's one public
class. Everything here runs in trio (``MeshRuntime`` drives it from asyncio).

This module is the node's life and what it hears: ``serve`` builds the stack
(``host.build``, which installs the overrides through ``overrides.apply``) and runs it;
messages go to the consumer (``_deliver``); drops, refusals and graylistings are counted
and logged rate-limited. Dialling is ``dial``, ping ``ping``, what it shows ``views``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import trio
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2
from libp2p.tools.anyio_service import background_trio_service

from meshcommon.neighbours import Neighbour
from meshcommon.p2p import views
from meshcommon.p2p.host import Hooks, Stack, build
from meshcommon.p2p.identity import node_key_pair, peer_id_of
from meshcommon.p2p.neighbours import IdentifyBook, NeighbourReporter, forget_gone
from meshcommon.p2p.pubsub import MeshGossipSub, MeshPubsub, peer_text
from meshcommon.p2p.scoring import scoring_params
from meshcommon.p2p.types import (
    DialOutcome,
    KeyProof,
    MeshView,
    NodeConfig,
    NodeCounters,
    NodeSnapshot,
    PnetRefusal,
    ReceivedMessage,
    RejectedMessage,
)
from meshcommon.p2p.validation import GossipValidator

log = logging.getLogger(__name__)

MAX_CACHED_ORIGINS = 10_000

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
        self._stack: Stack | None = None
        self._identify_book: IdentifyBook | None = None  # (neighbours) made on first use
        self._reporter: NeighbourReporter | None = None
        self._origins: dict[bytes, str] = {}  # wire peer ID -> base58, bounded
        self.counters = NodeCounters()
        self._validator: GossipValidator | None = None
        if config.validate_messages:
            self._validator = GossipValidator(
                self.counters,
                self._origin,
                max_bytes=config.max_message_bytes,
                on_rejected=on_rejected,
            )

    # -- the running stack (tests and tools look inside) -------------------------------
    def _running(self) -> Stack:
        if self._stack is None:
            raise RuntimeError("node is not running")
        return self._stack

    @property
    def _host(self) -> Any:
        return self._stack.host if self._stack is not None else None

    @property
    def _pubsub(self) -> MeshPubsub | None:
        return self._stack.pubsub if self._stack is not None else None

    @property
    def _gossipsub(self) -> MeshGossipSub | None:
        return self._stack.gossipsub if self._stack is not None else None

    @property
    def installed_overrides(self) -> tuple[str, ...]:
        """The overrides' flags installed on the running node (empty before ``serve``)."""
        return self._stack.installed if self._stack is not None else ()

    # -- lifecycle ----------------------------------------------------------------------
    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        hooks = Hooks(
            counters=self.counters,
            deliver=self._deliver,
            on_subscription_drop=self._count_drop,
            on_outbound_drop=self._count_outbound_drop,
            on_pnet_refused=self._count_pnet_refusal,
            on_graylisted=self._log_graylisted,
            on_subscribed=self._on_peer_subscribed,
            validator=self._validator,
        )
        stack = build(cfg, self.key_pair, self.peer_id, hooks)
        host, pubsub, gossipsub = stack.host, stack.pubsub, stack.gossipsub
        self._stack = stack
        try:
            async with (
                host.run(listen_addrs=[stack.listen]),
                background_trio_service(pubsub),
                background_trio_service(gossipsub),
                trio.open_nursery() as nursery,
            ):
                await pubsub.wait_until_ready()
                for topic in cfg.topics:
                    sub = await pubsub.subscribe(topic)
                    if not cfg.overrides.direct:  # (direct) messages arrive in _deliver
                        nursery.start_soon(self._drain, topic, sub)
                nursery.start_soon(stack.reaper.run)
                if stack.dht is not None:
                    nursery.start_soon(stack.dht.run)
                log.info("libp2p node %s listening on %s", self.peer_id, stack.listen)
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
        await self._running().pubsub.publish(topic, data)

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome:
        """Dial ``peer_id`` trying each multiaddr in turn, bounded (``dial.Dialer``)."""
        return await self._running().dialer.connect(peer_id, multiaddrs)

    async def prove_key(self, peer_id: str, multiaddr: str) -> KeyProof:
        """Whether the host at ``multiaddr`` holds ``peer_id``'s key: the security
        handshake alone (``dial.Dialer.prove_key``)."""
        return await self._running().dialer.prove_key(peer_id, multiaddr)

    async def ping(self, peer_id: str, timeout_s: float | None = None) -> float:
        """One libp2p ping over the existing connection: the round-trip time in ms, or
        ``PingError`` (``ping.Pinger``; never dials)."""
        return await self._running().pinger.ping(peer_id, timeout_s)

    async def identify_neighbours(self) -> int:
        """Identify the connected peers not identified yet (a few per call) and forget
        what is kept for peers that are gone; how many were asked."""
        stack = self._running()
        identities = self._identities(stack)
        asked = await identities.identify_missing(str(p) for p in stack.host.get_connected_peers())
        forget_gone(stack, identities)
        return asked

    async def identities(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Connected peers' identify data learnt so far: peer ID -> (agent version,
        protocols)."""
        known = self._identities(self._running()).known
        return {p: (i.agent_version, i.protocols) for p, i in known.items()}

    async def neighbours(self, known_topics: Sequence[str]) -> tuple[Neighbour, ...]:
        """What this node sees of its neighbours (``meshcommon.neighbours``)."""
        stack = self._running()
        if self._reporter is None:
            self._reporter = NeighbourReporter()
        return self._reporter.report(stack, self._identities(stack), known_topics)

    def _identities(self, stack: Stack) -> IdentifyBook:
        if self._identify_book is None or self._identify_book.host is not stack.host:
            self._identify_book = IdentifyBook(stack.host)
        return self._identify_book

    async def disconnect(self, peer_id: str) -> None:
        if self._stack is not None:
            await self._stack.host.disconnect(ID.from_base58(peer_id))

    async def snapshot(self) -> NodeSnapshot:
        return views.snapshot(self._running())

    async def dht_peers(self) -> list[tuple[str, tuple[str, ...]]]:
        """Peers the DHT found: (peer ID, multiaddrs), oldest first; [] without a DHT."""
        dht = self._running().dht
        return dht.found_peers() if dht is not None else []

    async def mesh_view(self) -> MeshView:
        """The GossipSub mesh, fanout and announced subscriptions per topic, and every open
        connection with its direction, remote address, age and last ping RTT."""
        return views.mesh_view(self._running())
