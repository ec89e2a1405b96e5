"""Signed peer records and message signatures, checked once per distinct input.

py-libp2p 0.8.1 attaches the sender's signed peer record (an envelope) to every pubsub
RPC, verifies the envelope of every inbound RPC (twice when it carries control messages)
and rebuilds and re-signs-or-marshals our own for every outbound one. It also re-derives
each message origin's public key from its peer ID for every message. All of these are
pure functions of their bytes: the results are cached here, and every message signature
is still verified.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from libp2p.crypto.serialization import deserialize_public_key
from libp2p.peer.envelope import consume_envelope, seal_record
from libp2p.peer.id import ID
from libp2p.peer.peer_record import PeerRecord
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX
from multiaddr import Multiaddr

log = logging.getLogger(__name__)

_SIGNING_PREFIX = PUBSUB_SIGNING_PREFIX.encode()
_RECORD_REFRESH_S = 60.0  # re-consume an unchanged record at most this often (TTL refresh)
_OWN_RECORD_TTL_S = 5.0  # re-check our own addresses at most this often
PEER_RECORD_TTL_S = 7200  # the address TTL upstream gives a consumed record


class SenderRecordCache:
    """Verifies a peer's signed peer record (the ``senderRecord`` py-libp2p attaches to
    every pubsub RPC) once per distinct bytes, instead of once per RPC (upstream:
    ``maybe_consume_signed_record`` in ``continuously_read_stream`` and again in
    ``GossipSub.handle_rpc`` when the RPC carries control messages).

    Safe because identical bytes carry the identical signature, payload and seq: the
    verification result cannot differ. An unchanged record is still re-consumed every
    ``_RECORD_REFRESH_S`` so that the peerstore keeps refreshing the addresses' TTL.
    A changed record always takes the full upstream path (signature, peer-ID match,
    seq ordering in ``consume_peer_record``)."""

    def __init__(self, max_peers: int = 4096) -> None:
        self._seen: OrderedDict[ID, tuple[bytes, float]] = OrderedDict()
        self._max = max_peers

    def consume(self, record: bytes, host: Any, peer_id: ID) -> bool:
        now = time.monotonic()
        hit = self._seen.get(peer_id)
        if hit is not None and hit[0] == record and now - hit[1] < _RECORD_REFRESH_S:
            return True
        try:
            envelope, rec = consume_envelope(record, "libp2p-peer-record")
            if rec.peer_id != peer_id:
                return False
            if not host.get_peerstore().consume_peer_record(envelope, PEER_RECORD_TTL_S):
                log.error("Failed to update the Certified-Addr-Book")
                return False
        except Exception as e:
            log.error("Failed to update the Certified-Addr-Book: %s", e)
            return False
        self._seen[peer_id] = (record, now)
        self._seen.move_to_end(peer_id)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return True

    def forget(self, peer_id: ID) -> None:
        self._seen.pop(peer_id, None)


class OwnRecordCache:
    """Our own signed peer record, for outgoing RPCs. Upstream ``env_to_send_in_RPC``
    rebuilds ``host.get_addrs()`` (several Multiaddr parses and encapsulations) and
    re-marshals the envelope for every forwarded message. Here the result of the same
    function is reused for ``_OWN_RECORD_TTL_S`` seconds, so an address change (new
    listener, observed address) reaches peers within that delay, and
    ``env_to_send_in_RPC`` itself still decides when a new record must be signed."""

    def __init__(self) -> None:
        self._bytes = b""
        self._at = -1e9

    def get(self, host: Any) -> bytes:
        now = time.monotonic()
        if now - self._at > _OWN_RECORD_TTL_S:
            self._bytes, _ = env_to_send_in_RPC(host)
            self._at = now
        return self._bytes


class SignatureVerifier:
    """Same checks as ``libp2p.pubsub.validators.signature_validator`` with the origin's
    public key cached. Upstream, per message: parse the key out of the peer ID (or
    ``msg.key``), re-derive the peer ID from the key and compare, then verify. The key
    <-> peer-ID binding is a pure function of the bytes, so it is checked once per origin
    and cached; the ed25519 verification itself still runs for every message."""

    def __init__(self, max_keys: int = 4096) -> None:
        self._keys: OrderedDict[bytes, Any] = OrderedDict()
        self._max = max_keys

    def _key_for(self, msg: rpc_pb2.Message) -> Any:
        from_id = msg.from_id
        key = self._keys.get(from_id)
        if key is not None:
            return key
        sender = ID(from_id)
        key = None
        try:
            key = sender.extract_public_key()
        except Exception:
            key = None
        if key is None:
            if not msg.key:
                return None
            key = deserialize_public_key(msg.key)
        if ID.from_pubkey(key) != sender:
            return None
        self._keys[from_id] = key
        while len(self._keys) > self._max:
            self._keys.popitem(last=False)
        return key

    def verify(self, msg: rpc_pb2.Message) -> bool:
        if not msg.signature:
            return False
        try:
            key = self._key_for(msg)
        except Exception:
            return False
        if key is None:
            return False
        unsigned = rpc_pb2.Message(
            data=msg.data, topicIDs=msg.topicIDs, from_id=msg.from_id, seqno=msg.seqno
        )
        try:
            return bool(key.verify(_SIGNING_PREFIX + unsigned.SerializeToString(), msg.signature))
        except Exception:
            return False


class PeerRecordSigner:
    """This node's signed peer record (RFC 0003 in an RFC 0002 envelope) of the addresses
    it advertises, for ``/api/health``: base64 of the envelope py-libp2p seals. ``seq`` is
    unix time in nanoseconds when the record is made (as go-libp2p), and a new record, with
    a higher seq, is made only when the advertised addresses change; otherwise the same
    bytes are served (a verifier caches them)."""

    def __init__(self, key_pair: Any) -> None:
        self._key = key_pair.private_key
        self._peer_id = ID.from_pubkey(key_pair.public_key)
        self._addrs: tuple[str, ...] | None = None
        self._seq = 0
        self._text = ""

    @property
    def seq(self) -> int:
        return self._seq

    def record_for(self, multiaddrs: Sequence[str]) -> str:
        """The base64 envelope of ``multiaddrs`` (``/p2p/<id>`` suffixes are dropped:
        a record carries transport addresses)."""
        addrs = tuple(dict.fromkeys(_transport(a) for a in multiaddrs))
        if addrs != self._addrs:
            seq = max(time.time_ns(), self._seq + 1)
            record = PeerRecord(self._peer_id, [Multiaddr(a) for a in addrs], seq)
            envelope = seal_record(record, self._key).marshal_envelope()
            self._addrs, self._seq = addrs, seq
            self._text = base64.b64encode(envelope).decode()
        return self._text


def _transport(multiaddr: str) -> str:
    head, sep, _ = multiaddr.rpartition("/p2p/")
    return head if sep else multiaddr
