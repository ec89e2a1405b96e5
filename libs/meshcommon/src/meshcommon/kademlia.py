"""Kademlia peer discovery, the pure part: keys and distances, the routing table, one
lookup's bookkeeping, the budgets and what is counted. No libp2p import (the wire is in
``meshcommon.p2p.dht``).

The mesh speaks the standard libp2p Kademlia wire (``/ipfs/kad/1.0.0``'s messages, as
go, js and rust speak them) under its own protocol ID, ``/chorus/kad/1.0.0``: a network
specific ID is what the spec allows and what go (``ProtocolPrefix``) and js (``protocol``)
let you set, so the mesh's DHT never merges with the public IPFS one.

Distance is the XOR of the SHA-256 of the keys (the spec); a peer's key is its peer ID's
bytes (the multihash).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

DHT_PROTOCOL_ID: Final = "/chorus/kad/1.0.0"
K: Final = 20  # bucket size, and peers per answer (the spec's k)
ALPHA: Final = 3  # queries in flight per lookup (the spec's alpha)

# Why an inbound or outbound DHT message was refused (counted, logged rate-limited).
REASON_TOO_LARGE: Final = "too_large"  # the length prefix claims more than the budget
REASON_UNPARSABLE: Final = "unparsable"  # not a Kademlia protobuf message
REASON_TRUNCATED: Final = "truncated"  # the stream ended inside a message
REASON_BAD_KEY: Final = "bad_key"  # empty or longer than the budget
REASON_UNSUPPORTED: Final = "unsupported_type"  # PUT_VALUE, ADD_PROVIDER: no records kept
REASON_TOO_MANY_PEERS: Final = "too_many_peers"  # more closer peers than k (extra ignored)
REASON_TOO_MANY_ADDRS: Final = "too_many_addrs"  # a peer with more addresses (extra ignored)
REASON_BAD_PEER: Final = "bad_peer_id"  # a closer peer whose ID is not a peer ID
REASON_BAD_ADDR: Final = "bad_multiaddr"  # an address that does not parse (skipped)
REASON_WRONG_TYPE: Final = "wrong_type"  # an answer of another type than the request
REASON_TIMEOUT: Final = "timeout"  # no (whole) message within the request budget
MALFORMED_REASONS: Final = (
    REASON_TOO_LARGE,
    REASON_UNPARSABLE,
    REASON_TRUNCATED,
    REASON_BAD_KEY,
    REASON_UNSUPPORTED,
    REASON_TOO_MANY_PEERS,
    REASON_TOO_MANY_ADDRS,
    REASON_BAD_PEER,
    REASON_BAD_ADDR,
    REASON_WRONG_TYPE,
    REASON_TIMEOUT,
)
# How an outbound query ended.
QUERY_RESULTS: Final = ("ok", "unsupported", "unreachable", "malformed", "timeout")


@dataclass(frozen=True)
class DhtBudget:
    """Everything a DHT peer controls, bounded."""

    max_message_bytes: int = 64 * 1024  # one message (20 peers with records is ~10 KiB)
    max_peers_per_response: int = K
    max_addrs_per_peer: int = 16
    max_key_bytes: int = 80  # the spec's limit for provider keys; peer IDs are ~38
    request_timeout_s: float = 5.0  # open the stream, ask, read the whole answer
    lookup_timeout_s: float = 20.0
    max_queries_per_lookup: int = 32
    # Peers a lookup may dial to ask (each closed after its answer). 0 (the default): a
    # lookup asks the peers already connected, the peering loop connects to what the DHT
    # found (within its budget) and the next walk asks them. Measured on 50 agents on 2
    # cores: dialling to ask (2-3 per walk) cost more CPU than the whole discovery, and a
    # connection the peering loop adopted while a walk held it was closed under it.
    max_dials_per_lookup: int = 0
    max_table_peers: int = 1024  # routing table, whatever the bucket sizes
    max_inbound_streams: int = 16  # answered at once; more are reset, counted
    max_found_peers: int = 1024  # peers remembered for the services (newest kept)


def kad_key(key: bytes) -> int:
    """A key's position in the Kademlia space (SHA-256, as the spec says)."""
    return int.from_bytes(hashlib.sha256(key).digest(), "big")


def common_prefix_len(a: int, b: int) -> int:
    return 256 - (a ^ b).bit_length()


def random_key(rng: random.Random | None = None) -> bytes:
    """A random lookup target: an identity multihash of 32 random bytes, shaped like a
    peer ID, so that any implementation accepts it as a FIND_NODE key."""
    body = (rng or random).randbytes(32)
    return bytes([0x00, 32]) + body


@dataclass
class TableEntry:
    peer_id: bytes
    addrs: tuple[bytes, ...]
    key: int


class RoutingTable:
    """k-buckets by common prefix length with our own key; a full bucket keeps its old
    peers (long-lived peers are the likeliest to stay, the paper's rule) and refuses the
    new one, and the whole table holds at most ``max_peers``."""

    def __init__(self, self_id: bytes, *, k: int = K, max_peers: int = 1024) -> None:
        self.self_key = kad_key(self_id)
        self.self_id, self.k, self.max_peers = self_id, k, max_peers
        self._buckets: dict[int, OrderedDict[bytes, TableEntry]] = {}
        self._size = 0
        self.refused_full = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, peer_id: bytes) -> bool:
        return peer_id in self._bucket(kad_key(peer_id))

    def _bucket(self, key: int) -> OrderedDict[bytes, TableEntry]:
        return self._buckets.setdefault(common_prefix_len(self.self_key, key), OrderedDict())

    def add(self, peer_id: bytes, addrs: Iterable[bytes]) -> bool:
        """Add or refresh a peer (its addresses replaced); False if refused (full)."""
        if peer_id == self.self_id:
            return False
        key = kad_key(peer_id)
        bucket = self._bucket(key)
        entry = bucket.get(peer_id)
        if entry is not None:
            entry.addrs = tuple(addrs) or entry.addrs
            bucket.move_to_end(peer_id)
            return True
        if len(bucket) >= self.k or self._size >= self.max_peers:
            self.refused_full += 1
            return False
        bucket[peer_id] = TableEntry(peer_id, tuple(addrs), key)
        self._size += 1
        return True

    def remove(self, peer_id: bytes) -> bool:
        bucket = self._bucket(kad_key(peer_id))
        if bucket.pop(peer_id, None) is None:
            return False
        self._size -= 1
        return True

    def get(self, peer_id: bytes) -> TableEntry | None:
        return self._bucket(kad_key(peer_id)).get(peer_id)

    def entries(self) -> list[TableEntry]:
        return [e for b in self._buckets.values() for e in b.values()]

    def closest(self, target: int, n: int, exclude: bytes = b"") -> list[TableEntry]:
        """The ``n`` peers closest to ``target`` (a ``kad_key``), nearest first."""
        found = [e for e in self.entries() if e.peer_id != exclude]
        found.sort(key=lambda e: e.key ^ target)
        return found[:n]


class Lookup:
    """One iterative FIND_NODE: which peers to ask next (closest unasked first, ``alpha``
    at a time), and when it is over (the ``k`` closest known were all asked, or the
    query budget is spent)."""

    def __init__(self, target: bytes, *, k: int = K, max_queries: int = 32) -> None:
        self.target, self.target_key = target, kad_key(target)
        self.k, self.max_queries = k, max_queries
        self._known: dict[bytes, int] = {}  # peer -> distance
        self.asked: set[bytes] = set()
        self.answered: set[bytes] = set()
        self.in_flight: set[bytes] = set()

    def offer(self, peers: Iterable[bytes]) -> int:
        """Candidates heard of; returns how many were new."""
        new = 0
        for p in peers:
            if p not in self._known:
                self._known[p] = kad_key(p) ^ self.target_key
                new += 1
        return new

    def _closest_known(self) -> list[bytes]:
        return sorted(self._known, key=self._known.__getitem__)

    def next_to_ask(self, alpha: int = ALPHA) -> list[bytes]:
        room = min(alpha - len(self.in_flight), self.max_queries - len(self.asked))
        if room <= 0:
            return []
        chosen = [p for p in self._closest_known()[: self.k] if p not in self.asked][:room]
        self.asked.update(chosen)
        self.in_flight.update(chosen)
        return chosen

    def finished(self, peer: bytes, answered: bool) -> None:
        self.in_flight.discard(peer)
        if answered:
            self.answered.add(peer)
        else:  # an unreachable peer is no longer a candidate for the k closest
            self._known.pop(peer, None)

    def done(self) -> bool:
        if self.in_flight:
            return False
        if len(self.asked) >= self.max_queries:
            return True
        return all(p in self.asked for p in self._closest_known()[: self.k])


@dataclass
class DhtCounters:
    """What the DHT did and refused, kept in the node's thread, read anywhere."""

    malformed: Counter[str] = field(default_factory=Counter)  # by reason
    queries: Counter[str] = field(default_factory=Counter)  # outbound, by result
    requests: Counter[str] = field(default_factory=Counter)  # inbound, by message type
    inbound_refused: int = 0  # streams reset: too many answered at once
    lookups: int = 0
    walks_dialled: int = 0  # connections opened for a query and closed after it
    table_peers: int = 0
    found_peers: int = 0


@dataclass
class WalkSchedule:
    """When the next random walk is due: ``fast_s`` after a walk that found a peer new
    to us (the mesh is still growing or changing: look again soon), twice the last delay
    after one that found nothing new, up to ``refresh_s``."""

    refresh_s: float
    fast_s: float = 2.0
    _delay: float = 0.0

    def after_walk(self, new_peers: int) -> float:
        """Seconds until the next walk, given how many peers this walk found first."""
        if new_peers > 0:
            self._delay = self.fast_s
        else:
            self._delay = min(self.refresh_s, max(self.fast_s, self._delay * 2))
        return self._delay
