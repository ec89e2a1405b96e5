"""The mesh's Kademlia DHT (meshcommon.p2p.dht) on real py-libp2p nodes on loopback: peers
that know only one address find every other server through it, close the connections
they opened only to ask, refuse and count malformed messages, and stay inside the private
network (a peer without the key finds nothing)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import varint
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.peer.id import ID

from meshcommon.kademlia import DHT_PROTOCOL_ID, DhtBudget
from meshcommon.p2p.node import MeshNode
from meshcommon.p2p.types import NodeConfig
from meshcommon.waiting import wait_until_async

from .conftest import free_port

HOST = "127.0.0.1"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


class Peer:
    def __init__(self, **config: object) -> None:
        self.port = free_port()
        cfg: dict[str, object] = {"dht": True, "dht_refresh_s": 600.0}
        cfg.update(config)
        self.node = MeshNode(NodeConfig(HOST, self.port, **cfg))  # type: ignore[arg-type]

    @property
    def addr(self) -> str:
        return f"/ip4/{HOST}/tcp/{self.port}/p2p/{self.node.peer_id}"

    async def found(self) -> set[str]:
        return {pid for pid, _ in await self.node.dht_peers()}

    async def connected(self) -> set[str]:
        return set((await self.node.snapshot()).connected_peers)


@asynccontextmanager
async def running(*peers: Peer) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        for p in peers:
            await nursery.start(p.node.serve)
        yield
        nursery.cancel_scope.cancel()


async def test_peers_knowing_one_address_find_every_server() -> None:
    seed, *others = [Peer() for _ in range(6)]
    everyone = {p.node.peer_id for p in [seed, *others]}
    async with running(seed, *others):
        for p in others:
            assert (await p.node.connect(seed.node.peer_id, [seed.addr])).connected

        async def all_found() -> bool:
            for p in [seed, *others]:
                if await p.found() != everyone - {p.node.peer_id}:
                    return False
            return True

        await wait_until_async(all_found, within_s=30, interval=0.2, what="all found via DHT")

        # Found without a single new connection: the walks asked the seed (the peering
        # loop of a service connects to what was found, within its budget).
        for p in others:
            assert await p.connected() == {seed.node.peer_id}
            assert p.node.counters.dht.walks_dialled == 0
            assert p.node.counters.dht.queries["ok"] > 0


async def test_lookups_that_dial_to_ask_close_what_they_opened() -> None:
    seed, *others = [Peer() for _ in range(5)]
    async with running(seed, *others):
        for p in others:
            assert (await p.node.connect(seed.node.peer_id, [seed.addr])).connected
        everyone = {p.node.peer_id for p in others} - {others[0].node.peer_id}
        await wait_until_async(
            others[0].found,
            ok=lambda f: everyone <= f,
            within_s=20,
            interval=0.2,
            what="peer 0 found the others",
        )
        dht = others[0].node._running().dht
        assert dht is not None
        asked = await dht.lookup(os.urandom(34), max_dials=3)
        assert asked >= 2 and dht.counters.walks_dialled >= 1
        assert dht.counters.walks_dialled <= 3  # the dial budget

        async def closed_again() -> bool:
            return await others[0].connected() <= {seed.node.peer_id}

        await wait_until_async(closed_again, within_s=10, what="the query connections closed")


async def test_a_client_asks_but_is_never_named() -> None:
    seed, server = Peer(), Peer()
    client = Peer(dht_server=False)
    async with running(seed, server, client):
        for p in (server, client):
            assert (await p.node.connect(seed.node.peer_id, [seed.addr])).connected
        await wait_until_async(
            client.found,
            within_s=20,
            interval=0.2,
            ok=lambda f: server.node.peer_id in f,
            what="client finds the server",
        )
        # The client has no handler: nobody lists it, nobody can ask it.
        assert client.node.peer_id not in await server.found()
        assert client.node.peer_id not in await seed.found()


async def _raw_request(peer: Peer, target: Peer, payload: bytes) -> bytes:
    """Send ``payload`` (already framed) on a DHT stream from ``peer`` to ``target``;
    returns what came back before the stream ended."""
    host = peer.node._running().host
    target_id = ID.from_base58(target.node.peer_id)
    stream = await host.new_stream(target_id, [TProtocol(DHT_PROTOCOL_ID)])
    await stream.write(payload)
    got = b""
    with trio.move_on_after(3):
        try:
            while chunk := await stream.read(4096):
                got += chunk
        except Exception:
            pass
    return got


async def test_malformed_requests_are_refused_and_counted_by_reason() -> None:
    server = Peer(dht_budget=DhtBudget(max_message_bytes=1024, request_timeout_s=1.0))
    asker = Peer(dht=False)
    async with running(server, asker):
        assert (await asker.node.connect(server.node.peer_id, [server.addr])).connected
        counters = server.node.counters.dht
        # A length prefix over the budget: refused before the body is read.
        assert await _raw_request(asker, server, varint.encode(1 << 20)) == b""
        # Not a protobuf.
        junk = b"\xff\xff\xff\xff"
        assert await _raw_request(asker, server, varint.encode(len(junk)) + junk) == b""
        # A record write: the mesh keeps no records.
        put = Message(type=Message.PUT_VALUE, key=b"k").SerializeToString()
        assert await _raw_request(asker, server, varint.encode(len(put)) + put) == b""
        # An empty key.
        find = Message(type=Message.FIND_NODE).SerializeToString()
        assert await _raw_request(asker, server, varint.encode(len(find)) + find) == b""
        assert counters.malformed["too_large"] == 1
        assert counters.malformed["unparsable"] == 1
        assert counters.malformed["unsupported_type"] == 1
        assert counters.malformed["bad_key"] == 1
        # A good request still gets its answer on the same node.
        ok = Message(type=Message.FIND_NODE, key=os.urandom(34)).SerializeToString()
        answer = await _raw_request(asker, server, varint.encode(len(ok)) + ok)
        msg = Message()
        msg.ParseFromString(answer[len(varint.encode(varint.decode_bytes(answer))) :])
        assert msg.type == Message.FIND_NODE


async def test_a_peer_without_the_private_network_key_finds_nothing() -> None:
    key = os.urandom(32)
    seed, member = Peer(pnet_keys=(key,)), Peer(pnet_keys=(key,))
    outsider = Peer()  # the same DHT protocol, no swarm.key
    async with running(seed, member, outsider):
        assert (await member.node.connect(seed.node.peer_id, [seed.addr])).connected
        await wait_until_async(
            member.found,
            within_s=20,
            interval=0.2,
            ok=lambda f: seed.node.peer_id in f,
            what="the member's DHT works",
        )
        outcome = await outsider.node.connect(seed.node.peer_id, [seed.addr])
        assert not outcome.connected
        # The DHT rides the host's connections: with none, no walk, nothing found.
        await outsider.node._running().dht.lookup(os.urandom(34))  # type: ignore[union-attr]
        assert await outsider.found() == set()
        assert seed.node.counters.pnet_refused["inbound", "no_key"] >= 1
        assert outsider.node.peer_id not in await seed.found()
