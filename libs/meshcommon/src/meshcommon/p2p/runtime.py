"""The trio/asyncio bridge: a MeshNode running in a trio thread, driven from asyncio.

py-libp2p cannot be awaited on the asyncio loop (it needs trio's context), and
``trio.from_thread.run`` called from the asyncio thread blocks that loop while trio works.
So trio runs in its own thread behind an anyio blocking portal, and asyncio awaits the
portal's futures through ``asyncio.wrap_future``: neither loop ever waits on the other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from meshcommon.neighbours import Neighbour
from meshcommon.p2p.node import MeshNode
from meshcommon.p2p.types import DialOutcome, KeyProof, MeshView, NodeSnapshot

T = TypeVar("T")


class MeshRuntime:
    """Owns the trio thread. Start once, call from any asyncio task, stop once."""

    def __init__(self, node: MeshNode) -> None:
        self.node = node
        self._portal_cm: contextlib.AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._serving: Future[None] | None = None

    @property
    def peer_id(self) -> str:
        return self.node.peer_id

    async def start(self) -> None:
        """Start the trio thread and the node; returns once it listens (or raises)."""

        def _start() -> None:
            cm = start_blocking_portal(backend="trio")
            portal = cm.__enter__()
            try:
                self._serving, _ = portal.start_task(self.node.serve)
            except BaseException:
                cm.__exit__(None, None, None)
                raise
            self._portal_cm, self._portal = cm, portal

        await asyncio.to_thread(_start)

    async def stop(self) -> None:
        if self._portal_cm is None:
            return
        if self._serving is not None:
            self._serving.cancel()
        cm, self._portal_cm, self._portal = self._portal_cm, None, None
        await asyncio.to_thread(cm.__exit__, None, None, None)

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a trio coroutine function in the node's thread and await its result."""
        if self._portal is None:
            raise RuntimeError("mesh runtime is not running")
        return await asyncio.wrap_future(self._portal.start_task_soon(fn, *args))

    async def publish(self, topic: str, data: bytes) -> None:
        await self.call(self.node.publish, topic, data)

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome:
        return await self.call(self.node.connect, peer_id, list(multiaddrs))

    async def prove_key(self, peer_id: str, multiaddr: str) -> KeyProof:
        """Whether the host at ``multiaddr`` holds ``peer_id``'s key (handshake only)."""
        return await self.call(self.node.prove_key, peer_id, multiaddr)

    async def snapshot(self) -> NodeSnapshot:
        return await self.call(self.node.snapshot)

    async def dht_peers(self) -> list[tuple[str, tuple[str, ...]]]:
        """Peers the Kademlia DHT found: (peer ID, multiaddrs ending in /p2p/<id>)."""
        return await self.call(self.node.dht_peers)

    async def mesh_view(self) -> MeshView:
        """Per topic the GossipSub mesh, fanout and subscribers; every connection."""
        return await self.call(self.node.mesh_view)

    async def ping(self, peer_id: str, timeout_s: float | None = None) -> float:
        """Round-trip time to a connected peer in milliseconds; raises ``PingError``."""
        return await self.call(self.node.ping, peer_id, timeout_s)

    async def identify_neighbours(self) -> int:
        """Identify connected peers not identified yet; forget peers that are gone."""
        return await self.call(self.node.identify_neighbours)

    async def identities(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Peer ID -> (agent version, protocols) of the connected peers identified."""
        return await self.call(self.node.identities)

    async def neighbours(self, known_topics: Sequence[str]) -> tuple[Neighbour, ...]:
        """What the node sees of its neighbours (``meshcommon.neighbours``)."""
        return await self.call(self.node.neighbours, tuple(known_topics))
