"""A stock py-libp2p node and a node with some of meshcommon's overrides, connected and
meshed: what the override modules' tests run against (real libp2p on loopback, trio: a
module using them says ``anyio_backend = "trio"``)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace

import pytest
import trio

from meshcommon.p2p.types import NO_OVERRIDES, NodeConfig, P2POverrides, ReceivedMessage
from meshcommon.topics import COORDINATION
from meshcommon.waiting import wait_until_async

HOST = "127.0.0.1"
# The overrides that change no byte on the wire and that every node had before they got
# flags: what "stock" meant in these tests then (see _pair).
LIMITS = {"noautodial": True, "retry": True, "outqueue": True, "subqueue": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Peer:
    def __init__(self, overrides: P2POverrides, **config: object) -> None:
        from meshcommon.p2p.node import MeshNode  # libp2p only where a test needs it

        self.port = free_port()
        self.inbox: list[bytes] = []
        self.node = MeshNode(
            NodeConfig(HOST, self.port, overrides=overrides, **config),  # type: ignore[arg-type]
            on_message=self._received,
        )

    def _received(self, msg: ReceivedMessage) -> None:
        self.inbox.append(msg.data)

    @property
    def addr(self) -> str:
        return f"/ip4/{HOST}/tcp/{self.port}/p2p/{self.node.peer_id}"


async def wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    await wait_until_async(condition, within_s=15, interval=0.02, what=what)


PairFactory = Callable[[P2POverrides], AbstractAsyncContextManager[tuple[Peer, Peer]]]


@asynccontextmanager
async def _pair(overrides: P2POverrides) -> AsyncIterator[tuple[Peer, Peer]]:
    """A stock node and one with ``overrides``, connected, each in the other's mesh.

    Both get ``LIMITS`` (no auto-dialling, one retry, big queues): they change no byte on
    the wire, and without them upstream's 32-slot queues drop the bursts of ``exchange``
    (by design: that is what those overrides are for, see test_pubsub)."""
    stock = Peer(replace(NO_OVERRIDES, **LIMITS))
    tuned = Peer(replace(overrides, **LIMITS))
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


@pytest.fixture
def stock_pair() -> PairFactory:
    """``async with stock_pair(overrides) as (stock, tuned)``."""
    return _pair


def payloads() -> list[bytes]:
    """Small and multi-frame (100 KB) messages, numbered to check the order."""
    sizes = [300] * 40 + [100_000] * 4 + [300] * 40
    return [
        f"{i:06d}".encode() + os.urandom(size // 2).hex().encode()[: size - 6]
        for i, size in enumerate(sizes)
    ]


async def _exchange(sender: Peer, receiver: Peer) -> None:
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


@pytest.fixture
def exchange() -> Callable[[Peer, Peer], object]:
    """``await exchange(sender, receiver)``: every message arrives, intact, in order."""
    return _exchange
