"""records (override ``record``, ``sig``): each peer's signed record checked once per
distinct bytes, origin keys cached; every signature and every changed record still
verified."""

from __future__ import annotations

import pytest
import trio

pytest.importorskip("libp2p")

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX

from meshcommon.p2p.records import SignatureVerifier
from meshcommon.p2p.types import P2POverrides
from meshcommon.topics import COORDINATION
from meshcommon.waiting import wait_until_async

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # MeshNode runs in trio


def _signed(data: bytes, seed: bytes = b"\x01" * 32) -> rpc_pb2.Message:
    from libp2p.peer.id import ID

    kp = create_new_key_pair(seed)
    msg = rpc_pb2.Message(
        data=data,
        topicIDs=[COORDINATION],
        from_id=ID.from_pubkey(kp.public_key).to_bytes(),
        seqno=b"\x00" * 8,
    )
    msg.signature = kp.private_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    return msg


def test_every_signature_is_verified_with_the_cached_key() -> None:
    verifier = SignatureVerifier()
    good = _signed(b"hello")
    assert verifier.verify(good) and verifier.verify(good)
    assert len(verifier._keys) == 1  # the origin's key, derived once
    tampered = _signed(b"hello")
    tampered.data = b"hellO"
    assert not verifier.verify(tampered)
    unsigned = _signed(b"x")
    unsigned.signature = b""
    assert not verifier.verify(unsigned)


async def test_forged_and_tampered_messages_are_dropped_the_good_one_kept(stock_pair) -> None:  # type: ignore[no-untyped-def]
    """Every message signature is still verified, and every changed sender record."""
    async with stock_pair(P2POverrides()) as (stock, tuned):
        ps = stock.node._pubsub
        stream = next(iter(ps.peers.values()))
        prefix = PUBSUB_SIGNING_PREFIX.encode()

        def signed(data: bytes, key=None) -> rpc_pb2.Message:  # type: ignore[no-untyped-def]
            msg = rpc_pb2.Message(
                data=data,
                topicIDs=[COORDINATION],
                from_id=ps.my_id.to_bytes(),
                seqno=ps._next_seqno(),
            )
            msg.signature = (key or ps.sign_key).sign(prefix + msg.SerializeToString())
            return msg

        record, _ = env_to_send_in_RPC(ps.host)
        bad_signature = signed(b"bad-signature")
        bad_signature.signature = bytes(64)
        other_key = create_new_key_pair(b"\x07" * 32).private_key
        tampered = bytearray(record)
        tampered[-5] ^= 0xFF
        tuned.inbox.clear()
        await ps.write_msg(stream, rpc_pb2.RPC(publish=[bad_signature], senderRecord=record))
        await ps.write_msg(
            stream, rpc_pb2.RPC(publish=[signed(b"wrong-key", other_key)], senderRecord=record)
        )
        await ps.write_msg(
            stream, rpc_pb2.RPC(publish=[signed(b"tampered-record")], senderRecord=bytes(tampered))
        )
        await ps.write_msg(stream, rpc_pb2.RPC(publish=[signed(b"good")], senderRecord=record))

        async def good_arrived() -> bool:
            return b"good" in tuned.inbox

        await wait_until_async(good_arrived, within_s=15, interval=0.02, what="the good message")
        await trio.sleep(0.2)
        assert tuned.inbox == [b"good"]
