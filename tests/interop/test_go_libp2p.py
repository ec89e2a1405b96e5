"""A mesh node (meshcommon.p2p, every py-libp2p override on) and go-libp2p (the go-libp2p
daemon p2pd, its go-libp2p-pubsub GossipSub) exchange GossipSub messages both ways, small
and multi-frame, over TCP, Noise and yamux. p2pd's go-libp2p-pubsub speaks up to
/meshsub/1.1.0, which is what both sides negotiate (no IDONTWANT, a v1.2 message)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from meshcommon.p2p.node import MeshNode
from meshcommon.p2p.runtime import MeshRuntime
from meshcommon.p2p.types import NodeConfig, ReceivedMessage
from meshcommon.topics import COORDINATION
from meshcommon.waiting import wait_until_async

from .conftest import free_port
from .go.daemon import GoPeer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_messages_both_ways_with_go_libp2p(go_peer: GoPeer) -> None:
    started = time.monotonic()
    received: list[ReceivedMessage] = []
    lock = threading.Lock()

    def on_message(msg: ReceivedMessage) -> None:  # the node's trio thread
        with lock:
            received.append(msg)

    node = MeshRuntime(MeshNode(NodeConfig("127.0.0.1", free_port()), on_message=on_message))
    await node.start()
    try:
        sub = go_peer.subscribe(COORDINATION)
        addr = f"/ip4/127.0.0.1/tcp/{node.node.config.port}/p2p/{node.peer_id}"
        assert await asyncio.to_thread(go_peer.connect, addr) == node.peer_id

        async def meshed() -> bool:
            snap = await node.snapshot()
            in_ours = go_peer.peer_id in snap.mesh_peers.get(COORDINATION, ())
            theirs = await asyncio.to_thread(go_peer.topic_peers, COORDINATION)
            return in_ours and node.peer_id in theirs

        await wait_until_async(meshed, within_s=30, what="the go peer in our mesh")
        gs = node.node._gossipsub
        assert gs is not None
        protocols = {str(p.to_base58()): str(v) for p, v in dict(gs.peer_protocol).items()}
        assert protocols[go_peer.peer_id] == "/meshsub/1.1.0"

        async def identified() -> dict[str, tuple[str, tuple[str, ...]]]:
            await node.call(node.node.identify_neighbours)
            return await node.call(node.node.identities)

        known, _ = await wait_until_async(
            identified, lambda k: go_peer.peer_id in k, within_s=15, what="identify"
        )
        agent_version, their_protocols = known[go_peer.peer_id]
        assert agent_version == "p2pd/0.1"
        assert "/meshsub/1.1.0" in their_protocols and "/meshsub/1.2.0" not in their_protocols

        # go -> py: 500 small messages and 10 x 100 KB (more than one yamux frame each).
        # Until go-libp2p-pubsub has grafted us too a message may go by gossip only (the
        # first heartbeat is a second away), so publish until the first one arrives.
        async def first_from_go() -> int:
            await asyncio.to_thread(go_peer.publish, COORDINATION, b"hello")
            with lock:
                return len(received)

        await wait_until_async(first_from_go, within_s=30, interval=0.5, what="go -> py")
        for i in range(500):
            await asyncio.to_thread(go_peer.publish, COORDINATION, f"g{i:04d}".encode() * 60)
        for i in range(10):
            await asyncio.to_thread(go_peer.publish, COORDINATION, f"G{i}".encode() * 50_000)

        async def from_go() -> tuple[int, int]:
            with lock:
                mine = [m for m in received if m.data[:1] in (b"g", b"G")]
            assert all(m.from_peer == go_peer.peer_id for m in mine)
            return len(mine), sum(1 for m in mine if len(m.data) == 100_000)

        counts, _ = await wait_until_async(
            from_go, lambda c: c == (510, 10), within_s=60, what="510 messages from go"
        )
        assert counts == (510, 10)

        # py -> go: the same.
        for i in range(500):
            await node.publish(COORDINATION, f"p{i:04d}".encode() * 60)
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        for i in range(10):
            await node.publish(COORDINATION, f"P{i}".encode() * 50_000)

        def at_go() -> list[bytes]:
            return [m.data for m in sub.poll() if m.sender == node.peer_id]

        async def counted_at_go() -> int:
            return len(at_go())

        await wait_until_async(
            counted_at_go, lambda n: n >= 510, within_s=60, what="510 messages at the go peer"
        )
        data = at_go()
        assert len(data) == 510 and len(set(data)) == 510
        assert sum(1 for d in data if len(d) == 100_000) == 10
        print(f"\ngo-libp2p <-> py: 2 x 510 messages in {time.monotonic() - started:.1f}s")
    finally:
        await node.stop()
