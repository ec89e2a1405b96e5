"""A mesh node (meshcommon.p2p, every py-libp2p override on) and js-libp2p 2.9 exchange
GossipSub messages both ways, small and multi-frame, and ping each other."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from meshcommon.p2p.node import MeshNode
from meshcommon.p2p.runtime import MeshRuntime
from meshcommon.p2p.types import NodeConfig, ReceivedMessage
from meshcommon.topics import COORDINATION
from meshcommon.waiting import wait_until_async

from .conftest import JsPeer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_messages_both_ways_and_pings_with_js_libp2p(js_peer: JsPeer) -> None:
    received: list[int] = []
    lock = threading.Lock()

    def on_message(msg: ReceivedMessage) -> None:  # the node's trio thread
        with lock:
            received.append(len(msg.data))

    node = MeshRuntime(MeshNode(NodeConfig("127.0.0.1", free_port()), on_message=on_message))
    await node.start()
    try:
        assert (await node.connect(js_peer.peer_id, [js_peer.addr])).connected

        async def meshed() -> bool:
            snap = await node.snapshot()
            return js_peer.peer_id in snap.mesh_peers.get(COORDINATION, ())

        await wait_until_async(meshed, within_s=30, what="the js peer in our mesh")
        await asyncio.sleep(1.5)  # a heartbeat: the js side grafts us too

        # js -> py: 2,000 small messages at 500/s, then 20 x 100 KB (needs our window
        # updates: 2 MB through a 256 KiB initial window).
        await asyncio.to_thread(js_peer.ask, "go 2000 300 500")
        await asyncio.to_thread(js_peer.ask, "go 20 100000 50")

        async def all_received() -> tuple[int, int]:
            with lock:
                return len(received), sum(1 for n in received if n > 50_000)

        counts, _ = await wait_until_async(
            all_received, lambda c: c == (2020, 20), within_s=60, what="2,020 messages from js"
        )
        assert counts == (2020, 20)

        # py -> js: the same (our RPCs coalesced, our yamux frames).
        for i in range(2000):
            await node.publish(COORDINATION, b"p" * 300)
            if i % 50 == 49:
                await asyncio.sleep(0.1)
        for _ in range(20):
            await node.publish(COORDINATION, b"q" * 100_000)
            await asyncio.sleep(0.02)

        async def js_stats() -> dict[str, int]:
            return await asyncio.to_thread(js_peer.ask, "stats")

        stats, _ = await wait_until_async(
            js_stats, lambda s: s["count"] >= 2020, within_s=60, what="2,020 messages at js"
        )
        assert (stats["count"], stats["big"]) == (2020, 20)

        rtts = [await node.ping(js_peer.peer_id) for _ in range(10)]
        assert all(0 < rtt < 1000 for rtt in rtts)
        js_rtts = (await asyncio.to_thread(js_peer.ask, f"ping {node.peer_id}"))["rtts"]
        assert len(js_rtts) == 10
    finally:
        await node.stop()
