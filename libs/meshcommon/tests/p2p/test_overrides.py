"""meshcommon's replacements of py-libp2p code paths (meshcommon.p2p.P2POverrides) keep the
wire protocol: a node with them talks to a stock py-libp2p node both ways, with each one
alone and all together. Real libp2p on loopback, in trio."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX

from meshcommon.p2p.node import MeshNode
from meshcommon.p2p.types import NO_OVERRIDES, NodeConfig, P2POverrides, ReceivedMessage
from meshcommon.topics import COORDINATION
from meshcommon.waiting import wait_until_async

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
NAMES = [f.name for f in fields(P2POverrides)]


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # MeshNode runs in trio


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Peer:
    def __init__(self, overrides: P2POverrides) -> None:
        self.port = free_port()
        self.inbox: list[bytes] = []
        self.node = MeshNode(
            NodeConfig(HOST, self.port, overrides=overrides), on_message=self._received
        )

    def _received(self, msg: ReceivedMessage) -> None:
        self.inbox.append(msg.data)

    @property
    def addr(self) -> str:
        return f"/ip4/{HOST}/tcp/{self.port}/p2p/{self.node.peer_id}"


async def wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    await wait_until_async(condition, within_s=15, interval=0.02, what=what)


@asynccontextmanager
async def pair(overrides: P2POverrides) -> AsyncIterator[tuple[Peer, Peer]]:
    """A stock node and one with ``overrides``, connected, each in the other's mesh."""
    stock, tuned = Peer(NO_OVERRIDES), Peer(overrides)
    async with trio.open_nursery() as nursery:
        await nursery.start(stock.node.serve)
        await nursery.start(tuned.node.serve)
        assert (await tuned.node.connect(stock.node.peer_id, [stock.addr])).connected

        async def meshed() -> bool:
            a = (await stock.node.snapshot()).mesh_peers.get(COORDINATION, ())
            b = (await tuned.node.snapshot()).mesh_peers.get(COORDINATION, ())
            return tuned.node.peer_id in a and stock.node.peer_id in b

        await wait_for(meshed, "both nodes in each other's mesh")
        yield stock, tuned
        nursery.cancel_scope.cancel()


def payloads() -> list[bytes]:
    """Small and multi-frame (100 KB) messages, numbered to check the order."""
    sizes = [300] * 40 + [100_000] * 4 + [300] * 40
    return [
        f"{i:06d}".encode() + os.urandom(size // 2).hex().encode()[: size - 6]
        for i, size in enumerate(sizes)
    ]


async def exchange(sender: Peer, receiver: Peer) -> None:
    sent = payloads()
    receiver.inbox.clear()
    for i, data in enumerate(sent):
        await sender.node.publish(COORDINATION, data)
        if i % 10 == 9:
            await trio.sleep(0.01)

    async def all_there() -> bool:
        return len(receiver.inbox) >= len(sent)

    await wait_for(all_there, f"{len(sent)} messages")
    assert receiver.inbox == sent  # every one, intact, in order


@pytest.mark.parametrize("spec", ["none", "all", *NAMES])
async def test_each_override_keeps_the_wire_protocol(spec: str) -> None:
    async with pair(P2POverrides.parse(spec)) as (stock, tuned):
        await exchange(stock, tuned)
        await exchange(tuned, stock)
        for _ in range(2):  # the second ping reuses the stream when "ping" is on
            assert 0 < await tuned.node.ping(stock.node.peer_id) < 5000
            assert 0 < await stock.node.ping(tuned.node.peer_id) < 5000


async def test_bulk_transfer_never_starves_the_sender_of_window() -> None:
    """go-yamux window updates: the stock sender keeps credit all along, and the
    receiver sends a few updates instead of one per read."""
    async with pair(P2POverrides()) as (stock, tuned):
        written: list[int] = []
        for conns in tuned.node._host.get_network().connections.values():
            for conn in conns if isinstance(conns, list) else [conns]:
                muxed = conn.muxed_conn
                original = muxed._write_frame

                async def counting(data: bytes, original=original) -> None:  # type: ignore[no-untyped-def]
                    written.append(data[1])  # the frame type
                    await original(data)

                muxed._write_frame = counting
        streams = [
            s
            for conns in stock.node._host.get_network().connections.values()
            for c in (conns if isinstance(conns, list) else [conns])
            for s in c.muxed_conn.streams.values()
        ]
        waits_before = sum(s._zero_window_waits for s in streams)
        tuned.inbox.clear()
        for i in range(100):  # 5 MB
            await stock.node.publish(COORDINATION, f"{i:06d}".encode() + b"y" * 49_994)
            await trio.sleep(0.002)

        async def all_there() -> bool:
            return len(tuned.inbox) >= 100

        await wait_for(all_there, "100 x 50 KB")
        assert sum(s._zero_window_waits for s in streams) == waits_before
        window_updates = sum(1 for typ in written if typ == 1)
        assert window_updates <= 5 * 1024 * 1024 // (64 * 1024)  # stock: one per read


async def test_forged_and_tampered_messages_are_dropped_the_good_one_kept() -> None:
    """Every message signature is still verified, and every changed sender record."""
    async with pair(P2POverrides()) as (stock, tuned):
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

        await wait_for(good_arrived, "the good message")
        await trio.sleep(0.2)
        assert tuned.inbox == [b"good"]


async def test_a_stale_reused_ping_stream_is_replaced() -> None:
    async with pair(P2POverrides()) as (stock, tuned):
        assert await tuned.node.ping(stock.node.peer_id) > 0
        kept, _ = tuned.node._stack.pinger.streams[stock.node.peer_id]
        await kept.reset()  # as if the peer had closed it
        assert await tuned.node.ping(stock.node.peer_id) > 0
        assert tuned.node._stack.pinger.streams[stock.node.peer_id][0] is not kept


def test_overrides_are_parsed_and_unknown_names_refused() -> None:
    assert P2POverrides.parse("all") == P2POverrides()
    assert P2POverrides.parse("") == P2POverrides()
    assert P2POverrides.parse("none") == NO_OVERRIDES
    only = P2POverrides.parse("tcp,yamux")
    assert only.spec == "tcp,yamux" and not only.ping
    assert P2POverrides.parse("all,-coalesce").spec == ",".join(n for n in NAMES if n != "coalesce")
    with pytest.raises(ValueError, match="unknown py-libp2p overrides"):
        P2POverrides.parse("all,-turbo")
