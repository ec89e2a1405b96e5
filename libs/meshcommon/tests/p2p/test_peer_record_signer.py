"""The agent's signed peer record: py-libp2p seals it, meshcommon's pure verifier (what
WHOOSH runs) and py-libp2p itself open it, and a new record (higher seq) is made exactly
when the advertised addresses change."""

from __future__ import annotations

import base64
import time

import pytest

pytest.importorskip("libp2p")

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.envelope import consume_envelope

from meshcommon import peer_record
from meshcommon.p2p.identity import peer_id_of
from meshcommon.p2p.records import PeerRecordSigner

KP = create_new_key_pair(b"\x07" * 32)
PEER = peer_id_of(KP)
A = f"/ip4/10.0.13.2/tcp/9000/p2p/{PEER}"
B = f"/ip4/10.0.13.3/tcp/9000/p2p/{PEER}"


def _open(text: str) -> peer_record.SignedPeerRecord:
    return peer_record.open_peer_record(
        base64.b64decode(text), expected_peer_id=PEER, now_ns=time.time_ns()
    )


def test_the_record_signs_the_advertised_addresses_without_p2p() -> None:
    before = time.time_ns()
    text = PeerRecordSigner(KP).record_for([A, B])
    rec = _open(text)
    assert rec.peer_id == PEER
    assert rec.addresses == ("/ip4/10.0.13.2/tcp/9000", "/ip4/10.0.13.3/tcp/9000")
    assert before <= rec.seq <= time.time_ns()  # unix time in ns, as go-libp2p
    # py-libp2p reads it as the standard envelope too.
    _, upstream = consume_envelope(base64.b64decode(text), "libp2p-peer-record")
    assert str(upstream.peer_id) == PEER and upstream.seq == rec.seq


def test_a_new_record_only_when_the_addresses_change() -> None:
    signer = PeerRecordSigner(KP)
    first = signer.record_for([A])
    assert signer.record_for([A]) == first  # the same bytes: verified once by WHOOSH
    second = signer.record_for([A, B])
    assert _open(second).seq > _open(first).seq
    third = signer.record_for([A])  # back to the first set: still a newer record
    assert third != first and _open(third).seq > _open(second).seq
