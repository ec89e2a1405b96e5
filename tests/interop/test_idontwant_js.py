"""GossipSub v1.2 IDONTWANT with js-libp2p 2.9 (@chainsafe/libp2p-gossipsub 14): three mesh
nodes (every override on) and the js peer in a square, a - js - b and a - c - b, negotiate
/meshsub/1.2.0 both ways. a publishes big messages: the js peer announces each to b as
soon as it has it (before validating it), while c's copy reaches b a hop of Python later;
b forwards c's copy to the js peer unless the announcement came first, and counts what it
held back (honoured). b announces to the js peer what it got from c. Every message still
reaches everyone."""

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

MESSAGES, SIZE = 600, 600  # above both sides' IDONTWANT threshold (512 bytes)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, msg: ReceivedMessage) -> None:  # the node's trio thread
        if len(msg.data) == SIZE:
            with self._lock:
                self.count += 1


async def test_idontwant_is_spoken_both_ways_with_js_libp2p(js_peer: JsPeer) -> None:
    inbox_b = Inbox()
    a, b, c = (
        MeshRuntime(MeshNode(NodeConfig("127.0.0.1", free_port()), on_message=inbox))
        for inbox in (None, inbox_b, None)
    )
    for rt in (a, b, c):
        await rt.start()
    try:
        for rt, peer in ((a, js_peer), (b, js_peer)):
            assert (await rt.connect(peer.peer_id, [peer.addr])).connected
        for x, y in ((a, c), (c, b)):
            y_addr = f"/ip4/127.0.0.1/tcp/{y.node.config.port}/p2p/{y.peer_id}"
            assert (await x.connect(y.peer_id, [y_addr])).connected

        async def square() -> bool:
            def mesh_of(rt: MeshRuntime) -> set[str]:
                return set(snaps[rt.peer_id].mesh_peers.get(COORDINATION, ()))

            snaps = {rt.peer_id: await rt.snapshot() for rt in (a, b, c)}
            js = await asyncio.to_thread(js_peer.ask, "idontwant")
            return (
                {js_peer.peer_id, c.peer_id} <= mesh_of(a)
                and {js_peer.peer_id, c.peer_id} <= mesh_of(b)
                and {a.peer_id, b.peer_id} <= mesh_of(c)
                and {a.peer_id, b.peer_id} <= set(js["mesh"])
            )

        await wait_until_async(square, within_s=30, interval=0.2, what="a meshed square")
        js = await asyncio.to_thread(js_peer.ask, "idontwant")
        assert js["protocols"][a.peer_id] == js["protocols"][b.peer_id] == "/meshsub/1.2.0"
        for rt in (a, b):
            gs = rt.node._gossipsub
            assert gs is not None
            protocols = {str(p.to_base58()): str(v) for p, v in dict(gs.peer_protocol).items()}
            assert protocols[js_peer.peer_id] == "/meshsub/1.2.0"

        for i in range(MESSAGES):
            await a.publish(COORDINATION, f"{i:05d}".encode() + b"m" * (SIZE - 5))
            await asyncio.sleep(0.005)

        async def delivered() -> tuple[int, int]:
            stats = await asyncio.to_thread(js_peer.ask, "stats")
            return int(stats["count"]), inbox_b.count

        counts, _ = await wait_until_async(
            delivered,
            lambda n: n == (MESSAGES, MESSAGES),
            within_s=60,
            interval=0.2,
            what="every message at the js peer and at b",
        )
        assert counts == (MESSAGES, MESSAGES)

        async def announced() -> tuple[int, int]:
            js = await asyncio.to_thread(js_peer.ask, "idontwant")
            return int(js["received"]), b.node.counters.idontwant["received"]

        (js_received, b_received), _ = await wait_until_async(
            announced,
            lambda r: r[0] > 0 and r[1] > 0,
            within_s=15,
            interval=0.2,
            what="IDONTWANTs received on both sides",
        )
        js = await asyncio.to_thread(js_peer.ask, "idontwant")
        ours = dict(b.node.counters.idontwant)
        # py -> js: b announced messages to the js peer, which received the announcements.
        assert ours["sent"] > 0 and js_received > 0
        # js -> py: the js peer announced them to b, which kept them and held back part of
        # what it would have forwarded to the js peer.
        assert js["sent"] > 0 and b_received > 0
        assert ours["honoured"] > 0, ours
        assert ours.get("over_budget", 0) == 0
    finally:
        for rt in (a, b, c):
            await rt.stop()
