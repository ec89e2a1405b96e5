"""liveness.ConnectionReaper: a connection to a host that vanished (no FIN, no RST) is
closed and counted, and the peer coming back with the same key is adopted, pubsub
included.

The vanishing host is a TCP relay between the two nodes that, once frozen, neither reads
nor writes nor closes: from the node's side the connection stays ESTABLISHED and silent,
as one to a powered-off machine does (py-libp2p 0.8.1 keeps such a connection, and the
pubsub stream on it, until TCP gives up ~15 minutes later).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

pytest.importorskip("libp2p")

import trio
from libp2p.peer.id import ID

from meshcommon.p2p.types import P2POverrides
from meshcommon.topics import COORDINATION

from .conftest import HOST, Peer, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # MeshNode runs in trio


class Relay:
    """TCP from a port of its own to ``target``; ``freeze`` makes it a black hole."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.frozen = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=HOST)
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._relay, listeners)

    async def _relay(self, client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream(HOST, self.target)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, client, server)
            nursery.start_soon(self._pump, server, client)

    async def _pump(self, src: trio.SocketStream, dst: trio.SocketStream) -> None:
        while not self.frozen.is_set():
            with trio.move_on_after(0.05):
                data = await src.receive_some(65536)
                if not data:
                    return
                if self.frozen.is_set():
                    break
                await dst.send_all(data)
        await trio.sleep_forever()  # sockets held open, nothing passes

    def addr(self, peer_id: str) -> str:
        return f"/ip4/{HOST}/tcp/{self.port}/p2p/{peer_id}"


async def _connections(peer: Peer, other: str) -> list[object]:
    return list(peer.node._host.get_network().get_connections(ID.from_base58(other)))


@asynccontextmanager
async def _vanished_and_back(
    tmp_path: Path, overrides: P2POverrides, *, grace_s: float | None = None
) -> AsyncIterator[tuple[Peer, Peer]]:
    """The monitor connected to X through a relay; the relay freezes (X's host vanishes),
    X stops, X comes back with the same key on another port and dials the monitor; the
    monitor closes the dead connection (``replaced``). Yields (monitor, X back).

    ``grace_s``: the swarm's grace period for new connections (py-libp2p: 20 s); the old
    connection is made older than it, so the swarm trims it itself when X's new one comes
    (the usual case: a rescheduled slot takes longer than 20 s to come back). Not much
    shorter than 1 s: the new connection must still be in its grace when the swarm trims,
    or it has the fewest streams and is the one trimmed."""
    key = str(tmp_path / "x.key")
    monitor = Peer(overrides, ping_timeout_s=1.0)
    gone = Peer(overrides, identity_path=key)
    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.node.serve)
        if grace_s is not None:
            monitor.node._host.get_network().connection_config.grace_period = grace_s
        gone_scope = trio.CancelScope()

        async def run_gone(*, task_status: trio.TaskStatus[None]) -> None:
            with gone_scope:
                await gone.node.serve(task_status=task_status)

        await nursery.start(run_gone)
        relay = Relay(gone.port)
        await nursery.start(relay.serve)
        x = gone.node.peer_id
        assert (await monitor.node.connect(x, [relay.addr(x)])).connected

        async def meshed() -> bool:
            return x in (await monitor.node.snapshot()).mesh_peers.get(COORDINATION, ())

        await wait_for(meshed, "the first X in the monitor's mesh")

        relay.frozen.set()  # the host vanishes: nothing passes, nothing is closed
        gone_scope.cancel()
        assert len(await _connections(monitor, x)) == 1  # still "connected"
        if grace_s is not None:
            await trio.sleep(grace_s * 2)  # the old connection's grace is over

        back = Peer(overrides, identity_path=key)  # same key, another address
        await nursery.start(back.node.serve)
        assert back.node.peer_id == x
        assert (await back.node.connect(monitor.node.peer_id, [monitor.addr])).connected

        async def replaced() -> bool:
            if grace_s is not None:  # the swarm closes it (its close ends: a socket to
                return len(await _connections(monitor, x)) == 1  # a relay has room)
            snap = await monitor.node.snapshot()
            return snap.stale_closed.get("replaced", 0) == 1

        await wait_for(replaced, "the dead connection closed")
        assert len(await _connections(monitor, x)) == 1
        yield monitor, back
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("grace_s", [None, 1.0], ids=["probed", "trimmed_by_swarm"])
async def test_a_peer_back_with_the_same_key_replaces_its_dead_connection(
    tmp_path: Path, grace_s: float | None
) -> None:
    async with _vanished_and_back(tmp_path, P2POverrides(), grace_s=grace_s) as (monitor, back):
        x = back.node.peer_id

        async def meshed() -> bool:
            return x in (await monitor.node.snapshot()).mesh_peers.get(COORDINATION, ())

        await wait_for(meshed, "X back in the monitor's mesh")

        # Pubsub runs on the new connection both ways: each hears the other.
        async def exchanged() -> bool:
            await back.node.publish(COORDINATION, b"from the new X")
            await monitor.node.publish(COORDINATION, b"to the new X")
            return b"from the new X" in monitor.inbox and b"to the new X" in back.inbox

        await wait_for(exchanged, "messages both ways over the new connection")
        snap = await monitor.node.snapshot()
        if grace_s is None:
            assert snap.stale_closed == {"replaced": 1}
            assert monitor.node.counters.pubsub_streams_moved == 1
        else:  # trimmed as X connected, before X's new pubsub stream: nothing to move
            assert snap.stale_closed == {}


async def test_without_stalestream_the_peer_subscriptions_are_forgotten(tmp_path: Path) -> None:
    """Upstream behaviour (the regression the override fixes): the old outbound stream's
    write error makes pubsub forget the subscriptions X sent on its new connection."""
    async with _vanished_and_back(tmp_path, P2POverrides.parse("all,-stalestream")) as (
        monitor,
        back,
    ):
        x = back.node.peer_id
        pubsub = monitor.node._pubsub
        assert pubsub is not None

        async def stream_on_live_connection() -> bool:
            out = pubsub.peers.get(ID.from_base58(x))
            return out is not None and not out.muxed_conn.is_closed

        await wait_for(stream_on_live_connection, "pubsub's stream to X on the new connection")
        subscribers = pubsub.peer_topics.get(COORDINATION, set())
        assert ID.from_base58(x) not in subscribers
        assert monitor.node.counters.pubsub_streams_moved == 0


async def test_pings_failing_in_a_row_close_the_connection(tmp_path: Path) -> None:
    monitor = Peer(P2POverrides(), ping_timeout_s=0.5, ping_failures_to_close=3)
    gone = Peer(P2POverrides())
    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.node.serve)
        await nursery.start(gone.node.serve)
        relay = Relay(gone.port)
        await nursery.start(relay.serve)
        x = gone.node.peer_id
        assert (await monitor.node.connect(x, [relay.addr(x)])).connected
        assert await monitor.node.ping(x) > 0
        relay.frozen.set()

        for attempt in range(1, 4):
            with pytest.raises(Exception, match="timeout"):
                await monitor.node.ping(x)
            if attempt < 3:  # two failures are not enough
                assert (await monitor.node.snapshot()).stale_closed == {}

        async def closed() -> bool:
            snap = await monitor.node.snapshot()
            return snap.stale_closed.get("ping_failures") == 1 and x not in snap.connected_peers

        await wait_for(closed, "the connection closed after 3 failed pings")
        assert await _connections(monitor, x) == []
        nursery.cancel_scope.cancel()


async def test_a_peer_without_the_ping_protocol_is_alive(tmp_path: Path) -> None:
    """A refusal is an answer: only pings unanswered in time count, so a live peer
    without ``/ipfs/ping/1.0.0`` (a foreign libp2p node) keeps its connection."""
    from libp2p.host.ping import ID as PING_PROTOCOL

    monitor = Peer(P2POverrides(), ping_timeout_s=0.5, ping_failures_to_close=2)
    foreign = Peer(P2POverrides())
    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.node.serve)
        await nursery.start(foreign.node.serve)
        foreign.node._host.remove_stream_handler(PING_PROTOCOL)
        x = foreign.node.peer_id
        assert (await monitor.node.connect(x, [foreign.addr])).connected
        for _ in range(4):
            with pytest.raises(Exception, match="ping_failed"):
                await monitor.node.ping(x)
        conns = await _connections(monitor, x)
        assert len(conns) == 1
        assert await monitor.node._stack.reaper.silent(conns[0]) is None  # type: ignore[union-attr]
        snap = await monitor.node.snapshot()
        assert snap.stale_closed == {} and x in snap.connected_peers
        nursery.cancel_scope.cancel()


async def test_a_ping_stuck_for_good_does_not_stop_the_count(tmp_path: Path) -> None:
    """py-libp2p's new_stream resets a failed stream in a shielded scope, which never ends
    when writes to a vanished host block: the ping holding the peer's ping lock is stuck
    for good. The pings after it fail in their own time and are counted."""
    monitor = Peer(P2POverrides(), ping_timeout_s=0.3, ping_failures_to_close=3)
    other = Peer(P2POverrides())
    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.node.serve)
        await nursery.start(other.node.serve)
        x = other.node.peer_id
        assert (await monitor.node.connect(x, [other.addr])).connected
        pinger = monitor.node._stack.pinger  # type: ignore[union-attr]
        stuck = pinger._locks.setdefault(x, trio.Lock())

        async def hold(*, task_status: trio.TaskStatus[None]) -> None:
            async with stuck:  # as the stuck ping does
                task_status.started()
                await trio.sleep_forever()

        await nursery.start(hold)
        for _ in range(3):
            with pytest.raises(Exception, match="earlier ping still unanswered"):
                await monitor.node.ping(x)

        async def closed() -> bool:
            snap = await monitor.node.snapshot()
            return snap.stale_closed.get("ping_failures") == 1 and x not in snap.connected_peers

        await wait_for(closed, "the connection closed after 3 stuck pings")
        nursery.cancel_scope.cancel()
