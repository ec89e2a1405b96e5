"""Kademlia peer discovery on the host: the standard libp2p Kademlia wire (``FIND_NODE``)
under the mesh's protocol ID, every answer and request within ``DhtBudget``.

Why not ``libp2p.kad_dht.KadDHT`` (py-libp2p 0.8.1), read in full before this was written:

- its protocol ID is the module constant ``/ipfs/kad/1.0.0``: ``protocol_prefix`` is
  accepted but the stream handler and every query (``peer_routing``) use the constant, so
  a private DHT needs copies of ``handle_stream`` (~600 lines) and ``_query_peer_for_closest``;
- its lookups dial every peer they query and never close those connections (an agent
  of a 50-agent mesh ends up connected to most of it, past its peering budget), and its
  routing-table refresh pings stale peers (more dials);
- unbounded where a peer decides: closer peers per answer and addresses per peer (only
  the 4 MiB message cap), the peerstore gets every address of every peer named in any
  answer (TTL 1 h, never capped); inbound concurrency is capped at 12 but a stream may
  stay open without a deadline;
- it imports bitswap, IPNS records (cbor2), random walk and the provider and value
  stores (disk persistence included), all left out by ``lean`` (~40 ms and a few MiB per
  process, measured with ``-X importtime``), for record storage the mesh does not use.

So this module keeps py-libp2p for everything below (host, streams, the ``kademlia_pb2``
wire messages, the bounded varint reader) and implements the peer-routing part of the
spec: FIND_NODE (and GET_VALUE / GET_PROVIDERS answered with closer peers only), PING.
Records (PUT_VALUE, ADD_PROVIDER) are refused, counted as ``unsupported_type``.

Runs in the node's trio thread. Private networks need nothing here: the DHT's streams
ride the host's connections, which the pnet transport wraps (``host.build``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import multihash
import trio
import varint
from libp2p.custom_types import TProtocol
from libp2p.io.exceptions import IncompleteReadError, MessageTooLarge
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.peer.id import ID
from libp2p.utils.varint import read_varint_prefixed_bytes_limited
from multiaddr import Multiaddr

from meshcommon.kademlia import (
    ALPHA,
    REASON_BAD_ADDR,
    REASON_BAD_KEY,
    REASON_BAD_PEER,
    REASON_TIMEOUT,
    REASON_TOO_LARGE,
    REASON_TOO_MANY_ADDRS,
    REASON_TOO_MANY_PEERS,
    REASON_TRUNCATED,
    REASON_UNPARSABLE,
    REASON_UNSUPPORTED,
    REASON_WRONG_TYPE,
    DhtBudget,
    DhtCounters,
    K,
    Lookup,
    RoutingTable,
    WalkSchedule,
    kad_key,
    random_key,
)
from meshcommon.logs import RateLimitedLog

log = logging.getLogger(__name__)

# Peers named in answers keep their addresses in the peerstore this long: enough to be
# dialled by the lookup that heard of them.
PEERSTORE_TTL_S = 600
# Types answered with the closer peers to the key (no records are kept).
_CLOSER_PEER_TYPES = (Message.FIND_NODE, Message.GET_VALUE, Message.GET_PROVIDERS)
_MAX_NOT_DHT = 4096  # peers remembered as not speaking the protocol


class Malformed(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def valid_peer_id(raw: bytes) -> bool:
    """A peer ID's bytes: a multihash (identity or SHA-256), at most 64 bytes."""
    if not 2 <= len(raw) <= 64:
        return False
    try:
        multihash.decode(raw)
    except Exception:
        return False
    return True


def parse_closer_peers(
    msg: Message, budget: DhtBudget, counters: DhtCounters
) -> list[tuple[bytes, tuple[Multiaddr, ...]]]:
    """The closer peers of an answer, within the budget: extra peers and addresses are
    ignored and counted, a bad ID or address is skipped and counted."""
    peers = list(msg.closerPeers)
    if len(peers) > budget.max_peers_per_response:
        counters.malformed[REASON_TOO_MANY_PEERS] += 1
        peers = peers[: budget.max_peers_per_response]
    out = []
    for p in peers:
        if not valid_peer_id(p.id):
            counters.malformed[REASON_BAD_PEER] += 1
            continue
        raw_addrs = list(p.addrs)
        if len(raw_addrs) > budget.max_addrs_per_peer:
            counters.malformed[REASON_TOO_MANY_ADDRS] += 1
            raw_addrs = raw_addrs[: budget.max_addrs_per_peer]
        addrs = []
        for raw in raw_addrs:
            try:
                addrs.append(Multiaddr(raw))
            except Exception:
                counters.malformed[REASON_BAD_ADDR] += 1
        out.append((bytes(p.id), tuple(addrs)))
    return out


def _dialable(addr: Multiaddr) -> bool:
    text = str(addr)
    return "/ip4/0.0.0.0/" not in text and "/ip6/::/" not in text


def multiaddr_text(addr: Multiaddr, peer: ID) -> str:
    """``addr`` ending in ``/p2p/<peer>`` (the form the services' address policy takes)."""
    text = str(addr)
    return text if "/p2p/" in text else f"{text}/p2p/{peer}"


class MeshDHT:
    """One node's DHT: the stream handler (server mode), lookups and the walk loop."""

    def __init__(
        self,
        host: Any,
        *,
        protocol: str,
        server: bool = True,
        budget: DhtBudget | None = None,
        refresh_s: float = 600.0,
        counters: DhtCounters | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.host, self.protocol, self.server = host, TProtocol(protocol), server
        self.budget = budget or DhtBudget()
        self.counters = counters or DhtCounters()
        self.self_id: ID = host.get_id()
        self.table = RoutingTable(
            self.self_id.to_bytes(), k=K, max_peers=self.budget.max_table_peers
        )
        self.schedule = WalkSchedule(refresh_s)
        self._rng = rng or random.Random()
        self._inbound = 0
        self._not_dht: OrderedDict[ID, None] = OrderedDict()
        # Peers this DHT found (answered us, were named in an answer, or asked us as a
        # server): what the services add to their peer books. Newest last, bounded.
        self._found: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._news = 0  # peers found first since the last walk (the walks' pace)
        self._bad = RateLimitedLog(log, interval_s=60.0)

    def install(self) -> None:
        """Answer the protocol (server mode; a client only asks, as the spec says)."""
        if self.server:
            self.host.set_stream_handler(self.protocol, self.handle_stream)

    # -- what the services read ---------------------------------------------------------
    def found_peers(self) -> list[tuple[str, tuple[str, ...]]]:
        """(peer ID, multiaddrs ending in /p2p/<id>) of every peer found, oldest first."""
        return list(self._found.items())

    def _remember(self, peer: ID, addrs: Sequence[Multiaddr]) -> None:
        if peer == self.self_id:
            return
        texts = tuple(multiaddr_text(a, peer) for a in addrs if _dialable(a))
        if not texts:
            return
        key = str(peer)
        if self._found.pop(key, None) is None:
            self._news += 1
        self._found[key] = texts
        while len(self._found) > self.budget.max_found_peers:
            self._found.popitem(last=False)
        self.counters.found_peers = len(self._found)

    def _add_to_table(self, peer: ID) -> None:
        addrs = [a for a in self._peer_addrs(peer) if _dialable(a)]
        if self.table.add(peer.to_bytes(), [a.to_bytes() for a in addrs]):
            self._remember(peer, addrs)
        self.counters.table_peers = len(self.table)

    def _peer_addrs(self, peer: ID) -> list[Multiaddr]:
        try:
            return list(self.host.get_peerstore().addrs(peer))
        except Exception:  # unknown or expired
            return []

    def _adopt_connected(self) -> None:
        """Connected peers that identify says speak the protocol join the routing table
        (as go and js do on identify): a peer that asked before its identify arrived is
        adopted here, not lost."""
        for peer in self.host.get_connected_peers():
            if peer.to_bytes() not in self.table and self._speaks_dht(peer):
                self._add_to_table(peer)

    def _speaks_dht(self, peer: ID) -> bool | None:
        """From identify: True/False, or None when it has not told us yet."""
        if peer in self._not_dht:
            return False
        try:
            protocols = self.host.get_peerstore().get_protocols(peer)
        except Exception:
            return None
        if not protocols:
            return None
        return self.protocol in protocols

    def _mark_not_dht(self, peer: ID) -> None:
        self._not_dht[peer] = None
        while len(self._not_dht) > _MAX_NOT_DHT:
            self._not_dht.popitem(last=False)

    def _malformed(self, peer: ID, way: str, exc: Malformed) -> None:
        self.counters.malformed[exc.reason] += 1
        self._bad.warning(
            (str(peer), exc.reason),
            "DHT %s %s: %s %s",
            way,
            peer,
            exc.reason,
            exc.detail,
        )

    # -- the wire -----------------------------------------------------------------------
    async def _read(self, stream: Any) -> Message | None:
        """One length-prefixed message; None at a clean end of stream."""
        try:
            raw = await read_varint_prefixed_bytes_limited(stream, self.budget.max_message_bytes)
        except MessageTooLarge as exc:
            raise Malformed(REASON_TOO_LARGE, str(exc)) from exc
        except IncompleteReadError as exc:
            if exc.received_bytes == 0:
                return None
            raise Malformed(REASON_TRUNCATED, str(exc)) from exc
        msg = Message()
        try:
            msg.ParseFromString(raw)
        except Exception as exc:
            raise Malformed(REASON_UNPARSABLE, type(exc).__name__) from exc
        return msg

    @staticmethod
    async def _write(stream: Any, msg: Message) -> None:
        data = msg.SerializeToString()
        await stream.write(varint.encode(len(data)) + data)

    # -- server side ----------------------------------------------------------------------
    async def handle_stream(self, stream: Any) -> None:
        peer: ID = stream.muxed_conn.peer_id
        if self._inbound >= self.budget.max_inbound_streams:
            self.counters.inbound_refused += 1
            await _reset(stream)
            return
        self._inbound += 1
        try:
            await self._serve(stream, peer)
        finally:
            self._inbound -= 1

    async def _serve(self, stream: Any, peer: ID) -> None:
        self._adopt_connected()  # the asker among them, once identify named the protocol
        answered = 0
        try:
            while True:
                with trio.move_on_after(self.budget.request_timeout_s):
                    msg = await self._read(stream)
                    if msg is None:
                        break
                    answer = self._answer(msg, peer)
                    await self._write(stream, answer)
                    answered += 1
                    continue
                if answered == 0:  # an idle stream after an answer is no fault
                    raise Malformed(REASON_TIMEOUT, "no request within the budget")
                break
        except Malformed as exc:
            self._malformed(peer, "request from", exc)
            await _reset(stream)
            return
        except Exception as exc:  # the stream broke (reset, connection closed)
            log.debug("DHT stream from %s: %s: %s", peer, type(exc).__name__, exc)
            await _reset(stream)
            return
        await _close(stream)

    def _answer(self, msg: Message, peer: ID) -> Message:
        kind = msg.type
        self.counters.requests[Message.MessageType.Name(kind)] += 1
        if kind == Message.PING:
            return Message(type=Message.PING)
        if kind not in _CLOSER_PEER_TYPES:
            raise Malformed(REASON_UNSUPPORTED, Message.MessageType.Name(kind))
        if not 0 < len(msg.key) <= self.budget.max_key_bytes:
            raise Malformed(REASON_BAD_KEY, f"{len(msg.key)} bytes")
        answer = Message(type=kind, key=msg.key)
        connected = set(self.host.get_connected_peers())
        closest = self.table.closest(
            kad_key(msg.key), self.budget.max_peers_per_response, exclude=peer.to_bytes()
        )
        for entry in closest:
            entry_id = ID(entry.peer_id)
            answer.closerPeers.add(
                id=entry.peer_id,
                addrs=list(entry.addrs[: self.budget.max_addrs_per_peer]),
                connection=Message.CONNECTED if entry_id in connected else Message.NOT_CONNECTED,
            )
        return answer

    # -- client side --------------------------------------------------------------------
    async def query(self, peer: ID, key: bytes) -> list[tuple[bytes, tuple[Multiaddr, ...]]] | None:
        """FIND_NODE ``key`` at ``peer`` (dialling it if needed): the closer peers it
        names, or None (counted by result)."""
        stream = None
        try:
            with trio.fail_after(self.budget.request_timeout_s):
                try:
                    stream = await self.host.new_stream(peer, [self.protocol])
                except Exception as exc:
                    connected = peer in self.host.get_connected_peers()
                    result = "unsupported" if connected else "unreachable"
                    if connected:
                        self._mark_not_dht(peer)
                    self.counters.queries[result] += 1
                    log.debug("DHT query %s: %s: %s", peer, result, exc)
                    return None
                await self._write(stream, Message(type=Message.FIND_NODE, key=key))
                answer = await self._read(stream)
                if answer is None:
                    raise Malformed(REASON_TRUNCATED, "no answer")
                if answer.type != Message.FIND_NODE:
                    raise Malformed(REASON_WRONG_TYPE, str(answer.type))
                found = parse_closer_peers(answer, self.budget, self.counters)
        except trio.TooSlowError:
            self.counters.queries["timeout"] += 1
            self.counters.malformed[REASON_TIMEOUT] += 1
            if stream is not None:
                await _reset(stream)
            return None
        except Malformed as exc:
            self.counters.queries["malformed"] += 1
            self._malformed(peer, "answer from", exc)
            if stream is not None:
                await _reset(stream)
            return None
        except Exception as exc:
            self.counters.queries["unreachable"] += 1
            log.debug("DHT query %s failed: %s: %s", peer, type(exc).__name__, exc)
            if stream is not None:
                await _reset(stream)
            return None
        self.counters.queries["ok"] += 1
        await _close(stream)
        return found

    def _candidates(self) -> list[ID]:
        """Connected peers that may speak the DHT (identify says so, or has not said)."""
        return [p for p in self.host.get_connected_peers() if self._speaks_dht(p) is not False]

    async def lookup(self, target: bytes, *, max_dials: int | None = None) -> int:
        """An iterative FIND_NODE for ``target``; returns how many peers answered.

        Connected peers are asked freely; at most ``max_dials`` others (default: the
        budget's) are dialled to be asked, each connection closed after its answer: the
        DHT never grows the connection count past the peering budget, whose loop dials
        (and keeps) what the DHT found."""
        self.counters.lookups += 1
        self._adopt_connected()
        dials_left = self.budget.max_dials_per_lookup if max_dials is None else max_dials
        lk = Lookup(target, k=K, max_queries=self.budget.max_queries_per_lookup)
        seeds = [ID(e.peer_id) for e in self.table.closest(lk.target_key, K)]
        pool: dict[bytes, ID] = {p.to_bytes(): p for p in [*seeds, *self._candidates()]}
        addrs: dict[bytes, tuple[Multiaddr, ...]] = {}
        lk.offer(pool)
        send, recv = trio.open_memory_channel[None](math.inf)

        async def ask(raw: bytes) -> None:
            nonlocal dials_left
            peer = pool[raw]
            was_connected = peer in self.host.get_connected_peers()
            if not was_connected:
                if dials_left <= 0:  # out of dials: not asked, not a candidate any more
                    lk.finished(raw, False)
                    send.send_nowait(None)
                    return
                dials_left -= 1
                if addrs.get(raw):
                    self.host.get_peerstore().add_addrs(peer, list(addrs[raw]), PEERSTORE_TTL_S)
            found = await self.query(peer, target)
            lk.finished(raw, found is not None)
            if found is None:
                self.table.remove(raw)
            else:
                self._add_to_table(peer)
                fresh = []
                for pid, peer_addrs in found:
                    if pid == self.self_id.to_bytes():
                        continue
                    fid = pool.setdefault(pid, ID(pid))
                    if peer_addrs:
                        addrs[pid] = peer_addrs
                        self._remember(fid, peer_addrs)
                    fresh.append(pid)
                lk.offer(fresh)
            if not was_connected and peer in self.host.get_connected_peers():
                self.counters.walks_dialled += 1
                try:
                    await self.host.disconnect(peer)
                except Exception as exc:
                    log.debug("DHT: closing the query connection to %s: %s", peer, exc)
            send.send_nowait(None)

        with trio.move_on_after(self.budget.lookup_timeout_s):
            async with trio.open_nursery() as nursery:
                while True:
                    for raw in lk.next_to_ask(ALPHA):
                        nursery.start_soon(ask, raw)
                    if lk.done() or not lk.in_flight:
                        break
                    await recv.receive()
        self.counters.table_peers = len(self.table)
        return len(lk.answered)

    async def run(self) -> None:
        """Walk: our own ID first, then random IDs, alternating; soon again after a walk
        that found someone new, else twice as late each time up to ``refresh_s``
        (``WalkSchedule``)."""
        own = True
        while True:
            if not self.host.get_connected_peers():
                await trio.sleep(1.0)  # nobody to ask yet (only until the first peer)
                continue
            target = self.self_id.to_bytes() if own else random_key(self._rng)
            own = not own
            self._news = 0
            try:
                await self.lookup(target)
            except Exception:  # a bug must not end discovery: logged, next walk
                log.exception("DHT walk failed")
            await trio.sleep(self.schedule.after_walk(self._news))


async def _reset(stream: Any) -> None:
    with contextlib.suppress(Exception):
        await stream.reset()


async def _close(stream: Any) -> None:
    with contextlib.suppress(Exception):
        await stream.close()
