"""libp2p signed peer records, verified without libp2p (WHOOSH installs no libp2p).

An agent proves which addresses are its own with a libp2p *signed envelope* (RFC 0002)
carrying a *PeerRecord* (RFC 0003), signed with the key its peer ID is made of. Anyone can
copy a peer ID into a health answer; only the key holder can sign a record for it.

Wire format (protobuf, proto3):

- ``Envelope``: ``public_key`` = 1 (``PublicKey``: ``Type`` = 1 enum, ``Data`` = 2 bytes),
  ``payload_type`` = 2, ``payload`` = 3, ``signature`` = 5.
- ``PeerRecord``: ``peer_id`` = 1 (bytes), ``seq`` = 2 (uint64), ``addresses`` = 3
  (``AddressInfo``: ``multiaddr`` = 1, bytes).
- Signed: ``varint(len(domain)) ‖ domain ‖ varint(len(type)) ‖ type ‖ varint(len(payload))
  ‖ payload`` with domain ``libp2p-peer-record`` and type ``\\x03\\x01`` (multicodec 0x0301
  ``libp2p-peer-record``, as go-libp2p and js-libp2p write it).

``open_peer_record`` checks all of it and returns what the record says, or raises
``RecordRejected`` with one of the ``REASONS``; nothing of a rejected record is returned.
Everything a peer controls has a budget (envelope size, field count and lengths, number of
addresses). ``seal_peer_record`` is the counterpart (tests, fake agents); real agents seal
with py-libp2p (``meshcommon.p2p.records.PeerRecordSigner``). ``PeerRecordVerifier`` caches
the expensive part by record bytes, so an unchanged record is verified once.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from multiaddr import Multiaddr

from meshcommon.limits import MAX_MULTIADDRS_PER_PEER

DOMAIN: Final = b"libp2p-peer-record"
PAYLOAD_TYPE: Final = b"\x03\x01"
KEY_TYPE_ED25519: Final = 1

# Budgets. A real envelope with a handful of addresses is ~150-300 bytes.
MAX_ENVELOPE_BYTES: Final = 4096
MAX_ADDRESS_BYTES: Final = 256  # one binary multiaddr
MAX_FIELDS: Final = 64  # protobuf fields in one message (addresses included)
MAX_RECORD_SKEW_S: Final = 300.0  # how far ahead of our clock a seq (unix ns) may be

REASON_GARBLED: Final = "garbled"
REASON_BAD_SIGNATURE: Final = "bad_signature"
REASON_WRONG_PEER_ID: Final = "wrong_peer_id"
REASON_UNSUPPORTED_KEY_TYPE: Final = "unsupported_key_type"
REASON_WRONG_PAYLOAD_TYPE: Final = "wrong_payload_type"
REASON_TOO_LARGE: Final = "too_large"
REASON_FROM_THE_FUTURE: Final = "from_the_future"
REASONS: Final = (
    REASON_GARBLED,
    REASON_BAD_SIGNATURE,
    REASON_WRONG_PEER_ID,
    REASON_UNSUPPORTED_KEY_TYPE,
    REASON_WRONG_PAYLOAD_TYPE,
    REASON_TOO_LARGE,
    REASON_FROM_THE_FUTURE,
)


class RecordRejected(ValueError):
    """A record that proves nothing: ``reason`` is one of ``REASONS`` (a metric label),
    ``detail`` the human part (never the record's bytes)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SignedPeerRecord:
    """What a valid record says, signed by the key of ``peer_id``."""

    peer_id: str  # base58btc, e.g. 12D3KooW...
    seq: int
    addresses: tuple[str, ...]  # transport multiaddrs (no /p2p/), as signed
    skipped_addresses: int = 0  # signed, but not a multiaddr this library knows


# -- base58btc (peer IDs) ----------------------------------------------------------------
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """``ValueError`` for a character outside the alphabet."""
    if len(text) > 128:
        raise ValueError("base58 text too long for a peer ID")
    n = 0
    for c in text:
        try:
            n = n * 58 + _B58_INDEX[c]
        except KeyError:
            raise ValueError(f"not base58: {c!r}") from None
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * pad + body


# -- protobuf: a small reader and writer ---------------------------------------------------
_VARINT, _LEN = 0, 2


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); at most 10 bytes, a uint64."""
    value = 0
    for i in range(10):
        if pos >= len(buf):
            raise RecordRejected(REASON_GARBLED, "truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if value >= 1 << 64:
                raise RecordRejected(REASON_GARBLED, "varint beyond 64 bits")
            return value, pos
    raise RecordRejected(REASON_GARBLED, "varint longer than 10 bytes")


def _fields(buf: bytes, what: str) -> list[tuple[int, int | bytes]]:
    """Every (field number, value) of one message: varints as int, length-delimited as
    bytes. Other wire types (fixed 32/64, groups) are not in these messages: garbled."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        if len(out) >= MAX_FIELDS:
            raise RecordRejected(REASON_TOO_LARGE, f"{what}: more than {MAX_FIELDS} fields")
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise RecordRejected(REASON_GARBLED, f"{what}: field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            out.append((number, value))
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos)
            if length > len(buf) - pos:
                raise RecordRejected(REASON_GARBLED, f"{what}: field {number} truncated")
            out.append((number, buf[pos : pos + length]))
            pos += length
        else:
            raise RecordRejected(REASON_GARBLED, f"{what}: unexpected wire type {wire}")
    return out


def _single(
    fields: list[tuple[int, int | bytes]], number: int, kind: type, what: str
) -> int | bytes | None:
    """The one value of a non-repeated field (a standard encoder writes it at most once:
    a repeated one is garbled, never "the last one wins"), of the expected wire type."""
    values = [v for n, v in fields if n == number]
    if len(values) > 1:
        raise RecordRejected(REASON_GARBLED, f"{what}: field {number} repeated")
    if not values:
        return None
    if not isinstance(values[0], kind):
        raise RecordRejected(REASON_GARBLED, f"{what}: field {number} has the wrong wire type")
    return values[0]


def _bytes_field(fields: list[tuple[int, int | bytes]], number: int, what: str) -> bytes:
    value = _single(fields, number, bytes, what)
    return value if isinstance(value, bytes) else b""


def _len_field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(value)) + value


# -- keys and peer IDs ---------------------------------------------------------------------
def ed25519_public_key_protobuf(raw: bytes) -> bytes:
    """libp2p's ``PublicKey`` protobuf of a 32-byte Ed25519 key (canonical encoding)."""
    return _varint(1 << 3 | _VARINT) + _varint(KEY_TYPE_ED25519) + _len_field(2, raw)


def ed25519_peer_id_bytes(raw: bytes) -> bytes:
    """The peer ID of an Ed25519 key: the identity multihash of its protobuf encoding."""
    encoded = ed25519_public_key_protobuf(raw)
    return b"\x00" + _varint(len(encoded)) + encoded


def ed25519_peer_id(raw: bytes) -> str:
    """``12D3KooW...`` of a 32-byte Ed25519 public key."""
    return b58encode(ed25519_peer_id_bytes(raw))


def signing_buffer(payload_type: bytes, payload: bytes, domain: bytes = DOMAIN) -> bytes:
    """What an envelope's signature covers (RFC 0002)."""
    return b"".join(_varint(len(f)) + f for f in (domain, payload_type, payload))


# -- opening a record ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Opened:
    """The time- and claim-independent part of a check (cached by record bytes)."""

    peer_id: str
    seq: int
    addresses: tuple[str, ...]
    skipped: int


def decode_base64(text: str) -> bytes:
    """The envelope bytes of a health answer's ``peer_record`` (standard base64)."""
    if len(text) > (MAX_ENVELOPE_BYTES + 2) // 3 * 4:
        raise RecordRejected(REASON_TOO_LARGE, f"more than {MAX_ENVELOPE_BYTES} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordRejected(REASON_GARBLED, f"not base64: {str(exc)[:80]}") from exc


def _open(envelope: bytes) -> _Opened:
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise RecordRejected(
            REASON_TOO_LARGE, f"envelope of {len(envelope)} bytes, at most {MAX_ENVELOPE_BYTES}"
        )
    env = _fields(envelope, "envelope")
    key_pb = _bytes_field(env, 1, "envelope")
    payload_type = _bytes_field(env, 2, "envelope")
    payload = _bytes_field(env, 3, "envelope")
    signature = _bytes_field(env, 5, "envelope")
    if not key_pb:
        raise RecordRejected(REASON_GARBLED, "envelope without a public key")
    key = _fields(key_pb, "public key")
    key_type = _single(key, 1, int, "public key")
    if key_type != KEY_TYPE_ED25519:  # absent is 0 in proto3: RSA
        names: dict[object, str] = {None: "RSA", 0: "RSA", 2: "Secp256k1", 3: "ECDSA"}
        raise RecordRejected(
            REASON_UNSUPPORTED_KEY_TYPE,
            f"{names.get(key_type, f'type {key_type!r}')} key; only Ed25519 is accepted",
        )
    raw_key = _bytes_field(key, 2, "public key")
    if len(raw_key) != 32:
        raise RecordRejected(REASON_GARBLED, f"Ed25519 key of {len(raw_key)} bytes, not 32")
    if payload_type != PAYLOAD_TYPE:
        raise RecordRejected(
            REASON_WRONG_PAYLOAD_TYPE,
            f"payload type {payload_type[:8].hex() or '(none)'}, not 0301 (libp2p-peer-record)",
        )
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(
            signature, signing_buffer(payload_type, payload)
        )
    except (InvalidSignature, ValueError) as exc:
        raise RecordRejected(
            REASON_BAD_SIGNATURE, "the signature does not verify with the envelope's key"
        ) from exc
    signer = ed25519_peer_id_bytes(raw_key)

    rec = _fields(payload, "peer record")
    record_peer = _bytes_field(rec, 1, "peer record")
    seq = _single(rec, 2, int, "peer record")
    if record_peer != signer:
        raise RecordRejected(
            REASON_WRONG_PEER_ID,
            f"record names peer {_peer_text(record_peer)}, signed by {b58encode(signer)}",
        )
    infos = [v for n, v in rec if n == 3]
    if len(infos) > MAX_MULTIADDRS_PER_PEER:
        raise RecordRejected(
            REASON_TOO_LARGE,
            f"{len(infos)} addresses, at most {MAX_MULTIADDRS_PER_PEER}",
        )
    addresses: list[str] = []
    skipped = 0
    for info in infos:
        if not isinstance(info, bytes):
            raise RecordRejected(REASON_GARBLED, "peer record: address of the wrong wire type")
        raw_addr = _bytes_field(_fields(info, "address"), 1, "address")
        if len(raw_addr) > MAX_ADDRESS_BYTES:
            raise RecordRejected(
                REASON_TOO_LARGE,
                f"an address of {len(raw_addr)} bytes, at most {MAX_ADDRESS_BYTES}",
            )
        try:
            addresses.append(str(Multiaddr(raw_addr)))
        except Exception:  # signed by the key holder, but unknown here (a newer protocol)
            skipped += 1
    return _Opened(b58encode(signer), int(seq or 0), tuple(addresses), skipped)


def _peer_text(raw: bytes) -> str:
    return b58encode(raw[:64]) if raw else "(none)"


def _finish(
    opened: _Opened, expected_peer_id: str | None, now_ns: int, max_skew_s: float
) -> SignedPeerRecord:
    if expected_peer_id is not None and opened.peer_id != expected_peer_id:
        raise RecordRejected(
            REASON_WRONG_PEER_ID,
            f"a valid record of {opened.peer_id}, not of the claimed {expected_peer_id[:64]}",
        )
    if opened.seq > now_ns + int(max_skew_s * 1e9):
        ahead = (opened.seq - now_ns) / 1e9
        raise RecordRejected(
            REASON_FROM_THE_FUTURE,
            f"seq {opened.seq} is {ahead:.0f} s ahead of this clock as unix nanoseconds "
            f"(at most {max_skew_s:g} s): it would outrank every later record",
        )
    return SignedPeerRecord(opened.peer_id, opened.seq, opened.addresses, opened.skipped)


def open_peer_record(
    envelope: bytes,
    *,
    expected_peer_id: str | None,
    now_ns: int,
    max_skew_s: float = MAX_RECORD_SKEW_S,
) -> SignedPeerRecord:
    """Verify a signed envelope of a PeerRecord and return what it says; ``RecordRejected``
    otherwise. ``expected_peer_id``: the peer ID the record must be of (what the health
    answer claims); ``now_ns``: the caller's clock, unix nanoseconds (a seq further ahead
    than ``max_skew_s`` is refused: go-libp2p and this project's agents use unix time in
    ns as seq, and a record from the future would outrank every real one for ever)."""
    return _finish(_open(envelope), expected_peer_id, now_ns, max_skew_s)


class PeerRecordVerifier:
    """``open_peer_record`` with the signature check cached by envelope bytes (bounded,
    least recently used goes): an unchanged record costs a dictionary lookup. The claim
    (expected peer ID) and the clock are checked on every call."""

    def __init__(self, max_entries: int = 8192, max_skew_s: float = MAX_RECORD_SKEW_S) -> None:
        self._cache: OrderedDict[bytes, _Opened | RecordRejected] = OrderedDict()
        self._max = max_entries
        self.max_skew_s = max_skew_s
        self.verified = 0  # signature checks actually run (cache misses)

    def open(
        self, envelope: bytes, *, expected_peer_id: str | None, now_ns: int
    ) -> SignedPeerRecord:
        hit = self._cache.get(envelope)
        if hit is None:
            try:
                hit = _open(envelope)
            except RecordRejected as exc:
                hit = exc
            self.verified += 1
            if len(envelope) <= MAX_ENVELOPE_BYTES:  # a too-large one costs nothing anyway
                self._cache[envelope] = hit
                while len(self._cache) > self._max:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(envelope)
        if isinstance(hit, RecordRejected):
            raise RecordRejected(hit.reason, hit.detail)
        return _finish(hit, expected_peer_id, now_ns, self.max_skew_s)

    def open_base64(
        self, text: str, *, expected_peer_id: str | None, now_ns: int
    ) -> SignedPeerRecord:
        return self.open(decode_base64(text), expected_peer_id=expected_peer_id, now_ns=now_ns)


# -- sealing (the counterpart, for tests and fakes) ----------------------------------------
def peer_record_payload(peer_id: str, seq: int, addresses: Sequence[str]) -> bytes:
    """The PeerRecord protobuf of ``addresses`` (transport multiaddrs, no /p2p/)."""
    out = _len_field(1, b58decode(peer_id)) + _varint(2 << 3 | _VARINT) + _varint(seq)
    for addr in addresses:
        out += _len_field(3, _len_field(1, Multiaddr(addr).to_bytes()))
    return out


def seal_envelope(
    private_key: Ed25519PrivateKey, payload: bytes, payload_type: bytes = PAYLOAD_TYPE
) -> bytes:
    """A signed envelope of ``payload`` (domain ``libp2p-peer-record``)."""
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = private_key.sign(signing_buffer(payload_type, payload))
    return (
        _len_field(1, ed25519_public_key_protobuf(raw))
        + _len_field(2, payload_type)
        + _len_field(3, payload)
        + _len_field(5, signature)
    )


def seal_peer_record(private_key: Ed25519PrivateKey, addresses: Sequence[str], seq: int) -> bytes:
    """The signed envelope a real agent with this key and these addresses serves."""
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return seal_envelope(private_key, peer_record_payload(ed25519_peer_id(raw), seq, addresses))


def peer_id_of_private_key(private_key: Ed25519PrivateKey) -> str:
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return ed25519_peer_id(raw)


def transport_address(multiaddr: str) -> str:
    """``/ip4/1.2.3.4/tcp/9000/p2p/12D3...`` -> ``/ip4/1.2.3.4/tcp/9000`` (what a peer
    record carries: its own addresses, without the peer ID)."""
    head, sep, _ = multiaddr.rpartition("/p2p/")
    return head if sep else multiaddr


__all__ = [
    "DOMAIN",
    "PAYLOAD_TYPE",
    "REASONS",
    "PeerRecordVerifier",
    "RecordRejected",
    "SignedPeerRecord",
]
