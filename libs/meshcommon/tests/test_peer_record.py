"""meshcommon.peer_record: a signed peer record proves an address list for a peer ID, and
every bad input is refused with its reason (nothing of it returned)."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meshcommon import peer_record as pr
from meshcommon.limits import MAX_MULTIADDRS_PER_PEER

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
PEER = pr.peer_id_of_private_key(KEY)
NOW = time.time_ns()
ADDRS = ["/ip4/10.0.13.2/tcp/9000", "/ip6/fd00::5/tcp/9000"]


def _open(envelope: bytes, peer: str | None = PEER, now: int = NOW) -> pr.SignedPeerRecord:
    return pr.open_peer_record(envelope, expected_peer_id=peer, now_ns=now)


def _reason(envelope: bytes, peer: str | None = PEER, now: int = NOW) -> str:
    with pytest.raises(pr.RecordRejected) as info:
        _open(envelope, peer, now)
    assert info.value.detail  # a human part, for the log and the API
    return info.value.reason


def test_a_valid_record_gives_its_peer_seq_and_addresses() -> None:
    rec = _open(pr.seal_peer_record(KEY, ADDRS, NOW - 10))
    assert (rec.peer_id, rec.seq, rec.addresses) == (PEER, NOW - 10, tuple(ADDRS))
    assert PEER.startswith("12D3KooW")


def test_garbled_and_truncated_bytes_are_garbled() -> None:
    good = pr.seal_peer_record(KEY, ADDRS, NOW)
    assert _reason(b"\xff" * 40) == "garbled"
    assert _reason(b"") == "garbled"  # no key at all
    for cut in (1, 5, len(good) // 2, len(good) - 1):
        assert _reason(good[:cut]) in ("garbled", "bad_signature"), cut
    assert _reason(good[: len(good) - 70]) == "garbled"  # the signature field cut short
    # A field written twice (which payload did the signature cover?) is refused.
    assert _reason(good + good[-66:]) == "garbled"


def test_a_huge_envelope_is_too_large_unread() -> None:
    huge = pr.seal_envelope(KEY, b"\x0a" + b"\x80" * 10_000)
    assert _reason(huge) == "too_large"
    with pytest.raises(pr.RecordRejected) as info:
        pr.decode_base64("A" * 100_000)
    assert info.value.reason == "too_large"


def test_not_base64_is_garbled() -> None:
    with pytest.raises(pr.RecordRejected) as info:
        pr.decode_base64("this is not base64!")
    assert info.value.reason == "garbled"


def test_a_record_of_another_peer_is_wrong_peer_id() -> None:
    other = pr.peer_id_of_private_key(OTHER)
    # A valid record of another key, presented for PEER (a replayed or borrowed record).
    assert _reason(pr.seal_peer_record(OTHER, ADDRS, NOW), peer=PEER) == "wrong_peer_id"
    # A record naming PEER, signed with another key (a forged claim).
    payload = pr.peer_record_payload(PEER, NOW, ADDRS)
    assert _reason(pr.seal_envelope(OTHER, payload), peer=PEER) == "wrong_peer_id"
    assert _reason(pr.seal_envelope(OTHER, payload), peer=other) == "wrong_peer_id"


def test_a_bad_signature_is_bad_signature() -> None:
    good = bytearray(pr.seal_peer_record(KEY, ADDRS, NOW))
    good[-1] ^= 1  # the last byte of the signature
    assert _reason(bytes(good)) == "bad_signature"
    # The payload changed after signing (another address slipped in).
    payload = pr.peer_record_payload(PEER, NOW, ADDRS)
    signed = pr.seal_envelope(KEY, payload)
    swapped = signed.replace(
        pr.peer_record_payload(PEER, NOW, ADDRS)[-8:],
        pr.peer_record_payload(PEER, NOW, ["/ip4/10.0.13.9/tcp/9000"])[-8:],
    )
    assert swapped != signed and _reason(swapped) == "bad_signature"


def test_a_record_from_the_future_is_refused() -> None:
    ahead = NOW + 10 * 60 * 10**9
    assert _reason(pr.seal_peer_record(KEY, ADDRS, ahead)) == "from_the_future"
    # Within the clock-skew allowance it is fine, and a counter-style seq (1, 2...) too.
    assert _open(pr.seal_peer_record(KEY, ADDRS, NOW + 60 * 10**9)).seq > NOW
    assert _open(pr.seal_peer_record(KEY, ADDRS, 7)).seq == 7


def test_a_non_ed25519_key_is_unsupported() -> None:
    payload = pr.peer_record_payload(PEER, NOW, ADDRS)
    rsa_key = b"\x08\x00\x12\x05hello"  # PublicKey{Type: RSA, Data: ...}
    envelope = (
        pr._len_field(1, rsa_key)
        + pr._len_field(2, pr.PAYLOAD_TYPE)
        + pr._len_field(3, payload)
        + pr._len_field(5, b"\x00" * 64)
    )
    assert _reason(envelope) == "unsupported_key_type"
    secp = b"\x08\x02\x12\x21" + b"\x02" * 33
    assert _reason(envelope.replace(pr._len_field(1, rsa_key), pr._len_field(1, secp))) == (
        "unsupported_key_type"
    )


def test_another_payload_type_is_refused() -> None:
    payload = pr.peer_record_payload(PEER, NOW, ADDRS)
    assert _reason(pr.seal_envelope(KEY, payload, payload_type=b"\x81\x06")) == (
        "wrong_payload_type"
    )


def test_too_many_addresses_are_too_large() -> None:
    many = [f"/ip4/10.0.13.2/tcp/{10000 + i}" for i in range(MAX_MULTIADDRS_PER_PEER + 1)]
    assert _reason(pr.seal_peer_record(KEY, many, NOW)) == "too_large"
    assert len(_open(pr.seal_peer_record(KEY, many[:-1], NOW)).addresses) == len(many) - 1


def test_the_verifier_checks_a_record_once_and_the_claim_every_time() -> None:
    verifier = pr.PeerRecordVerifier()
    text = base64.b64encode(pr.seal_peer_record(KEY, ADDRS, NOW)).decode()
    for _ in range(5):
        assert verifier.open_base64(text, expected_peer_id=PEER, now_ns=NOW).addresses == tuple(
            ADDRS
        )
    assert verifier.verified == 1
    other = pr.peer_id_of_private_key(OTHER)
    with pytest.raises(pr.RecordRejected) as info:  # cached bytes, another claim
        verifier.open_base64(text, expected_peer_id=other, now_ns=NOW)
    assert info.value.reason == "wrong_peer_id"
    bad = bytearray(base64.b64decode(text))
    bad[-1] ^= 1
    for _ in range(3):  # a rejection is cached too
        with pytest.raises(pr.RecordRejected):
            verifier.open(bytes(bad), expected_peer_id=PEER, now_ns=NOW)
    assert verifier.verified == 2
    # The clock is applied on every call: a cached record that was from the future...
    future = pr.seal_peer_record(KEY, ADDRS, NOW + 600 * 10**9)
    with pytest.raises(pr.RecordRejected):
        verifier.open(future, expected_peer_id=PEER, now_ns=NOW)
    # ...is fine once the clock has caught up.
    assert verifier.open(future, expected_peer_id=PEER, now_ns=NOW + 600 * 10**9).seq


def test_peer_ids_and_base58_round_trip() -> None:
    raw = pr.b58decode(PEER)
    assert raw[:2] == b"\x00\x24" and pr.b58encode(raw) == PEER
    with pytest.raises(ValueError):
        pr.b58decode("0OIl")
    assert pr.transport_address(f"/ip4/1.2.3.4/tcp/9000/p2p/{PEER}") == "/ip4/1.2.3.4/tcp/9000"
