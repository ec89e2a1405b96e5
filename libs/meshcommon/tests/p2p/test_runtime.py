"""Real libp2p: three MeshRuntime nodes on 127.0.0.1 in a line A - B - C.

Each node runs in its own trio thread; the tests drive them from asyncio, exactly as the
FastAPI services do. Everything waits by polling against a deadline.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

pytest.importorskip("libp2p")

from meshcommon.gossip import DecodedGossip, decode, encode
from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig, PingError, ReceivedMessage
from meshcommon.p2p.identity import load_or_create_key_pair, peer_id_of
from meshcommon.topics import ALL_TOPICS, COORDINATION, META_DISCUSSION
from meshcommon.waiting import wait_until_async

HOST = "127.0.0.1"
DEADLINE_S = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    await wait_until_async(check, within_s=DEADLINE_S, what=what)


@dataclass
class Member:
    runtime: MeshRuntime
    port: int
    inbox: list[ReceivedMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def peer_id(self) -> str:
        return self.runtime.peer_id

    @property
    def addr(self) -> str:
        return f"/ip4/{HOST}/tcp/{self.port}/p2p/{self.peer_id}"

    def received(self) -> list[ReceivedMessage]:
        with self.lock:
            return list(self.inbox)


def make_member(fail_on: bytes | None = None) -> Member:
    """A node that records what it receives; a message containing ``fail_on`` makes its
    consumer raise (a buggy consumer)."""
    port = free_port()
    holder: list[Member] = []

    def on_message(msg: ReceivedMessage) -> None:  # runs in the node's trio thread
        if fail_on is not None and fail_on in msg.data:
            raise RuntimeError("consumer bug")
        with holder[0].lock:
            holder[0].inbox.append(msg)

    node = MeshNode(NodeConfig(listen_host=HOST, port=port), on_message=on_message)
    member = Member(MeshRuntime(node), port)
    holder.append(member)
    return member


async def start_all(members: list[Member]) -> None:
    await asyncio.gather(*(m.runtime.start() for m in members))


async def stop_all(members: list[Member]) -> None:
    results = await asyncio.gather(*(m.runtime.stop() for m in members), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors


async def in_mesh(member: Member, topic: str, *peers: Member) -> bool:
    snap = await member.runtime.snapshot()
    return all(p.peer_id in snap.mesh_peers.get(topic, ()) for p in peers)


@pytest.fixture(scope="module")
async def line() -> AsyncIterator[tuple[Member, Member, Member]]:
    a, b, c = make_member(), make_member(), make_member()
    members = [a, b, c]
    try:
        await start_all(members)
        ab = await a.runtime.connect(b.peer_id, [b.addr])
        cb = await c.runtime.connect(b.peer_id, [b.addr])
        assert ab.connected, ab
        assert cb.connected, cb
        assert ab.multiaddr == b.addr
        assert ab.failures == ()
        yield a, b, c
    finally:
        await stop_all(members)


@pytest.mark.anyio
async def test_gossip_forwarded_through_middle_node(line: tuple[Member, Member, Member]) -> None:
    a, b, c = line
    # GossipSub only forwards along mesh links, which form on the heartbeat (1 s).
    await wait_for(lambda: in_mesh(b, COORDINATION, a, c), "B's mesh to hold A and C")
    await wait_for(lambda: in_mesh(a, COORDINATION, b), "A's mesh to hold B")
    await wait_for(lambda: in_mesh(c, COORDINATION, b), "C's mesh to hold B")
    snap_c = await c.runtime.snapshot()
    assert a.peer_id not in snap_c.connected_peers  # so C can only hear A through B

    payload = {"type": "availability", "node_id": "node-a", "marker": time.time_ns()}
    await a.runtime.publish(COORDINATION, encode(payload))

    def from_a(m: Member) -> list[ReceivedMessage]:
        return [
            r
            for r in m.received()
            if r.topic == COORDINATION and decode(r.data) == DecodedGossip("availability", payload)
        ]

    async def c_has_it() -> bool:
        return bool(from_a(c))

    await wait_for(c_has_it, "C to receive A's message")
    got = from_a(c)
    assert len(got) == 1  # no duplicates delivered
    assert got[0].from_peer == a.peer_id  # the origin, not the forwarder B
    assert got[0].seqno
    assert from_a(b)[0].from_peer == a.peer_id
    # A's own publish is filtered out of A's inbox.
    assert not from_a(a)


@pytest.mark.anyio
async def test_topic_isolation(line: tuple[Member, Member, Member]) -> None:
    a, b, c = line
    await wait_for(lambda: in_mesh(b, META_DISCUSSION, a, c), "B's meta-discussion mesh")
    marker = f"meta-{time.time_ns()}".encode()
    await c.runtime.publish(META_DISCUSSION, encode({"type": "meta", "m": marker.decode()}))

    async def a_has_it() -> bool:
        return any(marker in r.data for r in a.received())

    await wait_for(a_has_it, "A to receive C's meta-discussion message")
    hits = [r for r in a.received() if marker in r.data]
    assert [r.topic for r in hits] == [META_DISCUSSION]
    assert hits[0].from_peer == c.peer_id


@pytest.mark.anyio
async def test_snapshot_lists_peers_and_topics(line: tuple[Member, Member, Member]) -> None:
    a, b, c = line
    snap_b = await b.runtime.snapshot()
    assert snap_b.peer_id == b.peer_id
    assert snap_b.listen_port == b.port
    assert set(snap_b.connected_peers) >= {a.peer_id, c.peer_id}
    assert snap_b.connected_peers == tuple(sorted(snap_b.connected_peers))
    assert set(snap_b.topics) == set(ALL_TOPICS)
    assert snap_b.dropped_by_topic == {}
    snap_a = await a.runtime.snapshot()
    assert b.peer_id in snap_a.connected_peers


@pytest.mark.anyio
async def test_dial_with_wrong_peer_id_is_peer_id_mismatch(
    line: tuple[Member, Member, Member],
) -> None:
    a, b, c = line
    # B's address, but claiming A's identity: what a Swarm VIP does to a dial.
    wrong = f"/ip4/{HOST}/tcp/{b.port}/p2p/{a.peer_id}"
    outcome = await c.runtime.connect(a.peer_id, [wrong])
    assert outcome.connected is False
    assert outcome.multiaddr is None
    assert len(outcome.failures) == 1
    failure = outcome.failures[0]
    assert failure.multiaddr == wrong
    assert failure.reason == "peer_id_mismatch"
    assert "PeerIDMismatchesPubkey" in failure.detail
    assert failure.answered_by == b.peer_id  # who really answered there, as a field
    # The failed dial did not disturb C's real link to B.
    snap_c = await c.runtime.snapshot()
    assert b.peer_id in snap_c.connected_peers
    assert a.peer_id not in snap_c.connected_peers


@pytest.mark.anyio
async def test_dial_fails_over_to_second_address() -> None:
    d, e = make_member(), make_member()
    try:
        await start_all([d, e])
        dead = f"/ip4/{HOST}/tcp/{free_port()}/p2p/{e.peer_id}"  # nothing listens there
        outcome = await d.runtime.connect(e.peer_id, [dead, e.addr])
        assert outcome.connected is True
        assert outcome.multiaddr == e.addr
        assert not outcome.already_connected
        assert len(outcome.failures) == 1
        assert outcome.failures[0].multiaddr == dead
        assert outcome.failures[0].reason == "connection_refused"
        assert outcome.failures[0].detail
        assert outcome.elapsed_ms > 0

        async def d_sees_e() -> bool:
            return e.peer_id in (await d.runtime.snapshot()).connected_peers

        await wait_for(d_sees_e, "D to list E as connected")
        again = await d.runtime.connect(e.peer_id, [e.addr])
        assert again.connected and again.already_connected
    finally:
        await stop_all([d, e])


@pytest.mark.anyio
async def test_dial_address_forms() -> None:
    d, e, f = make_member(), make_member(), make_member()
    try:
        await start_all([d, e, f])
        # A /p2p/ component naming another peer fails without a dial.
        other = f"/ip4/{HOST}/tcp/{e.port}/p2p/{f.peer_id}"
        wrong = await d.runtime.connect(e.peer_id, [other])
        assert not wrong.connected
        assert [(x.multiaddr, x.reason) for x in wrong.failures] == [(other, "peer_id_mismatch")]
        # A plain transport address (no /p2p/) is dialled as the given peer.
        plain = f"/ip4/{HOST}/tcp/{e.port}"
        outcome = await d.runtime.connect(e.peer_id, [plain])
        assert outcome.connected, outcome
        assert outcome.multiaddr == plain
        # Garbage in the list is a failure, never an exception.
        mixed = await d.runtime.connect(f.peer_id, ["garbage", f.addr])
        assert mixed.connected
        assert mixed.failures[0].multiaddr == "garbage"
    finally:
        await stop_all([d, e, f])


@pytest.mark.anyio
async def test_dial_edge_cases() -> None:
    d = make_member()
    try:
        await start_all([d])
        own = await d.runtime.connect(d.peer_id, [d.addr])
        assert not own.connected
        assert own.failures[0].reason == "self"
        bad = await d.runtime.connect("notapeer", [d.addr])
        assert not bad.connected
        assert bad.failures[0].reason == "invalid_peer_id"
    finally:
        await stop_all([d])


@pytest.mark.anyio
async def test_ping_measures_round_trip_and_fails_clearly() -> None:
    d, e = make_member(), make_member()
    try:
        await start_all([d, e])
        assert (await d.runtime.connect(e.peer_id, [e.addr])).connected
        rtts = [await d.runtime.ping(e.peer_id) for _ in range(5)]
        assert all(0 < rtt < 1000 for rtt in rtts), rtts
        assert 0 < await e.runtime.ping(d.peer_id) < 1000  # either side can ping

        # A peer we have no connection to: refused at once, never dialled.
        stranger = peer_id_of(load_or_create_key_pair(None))
        started = time.monotonic()
        with pytest.raises(PingError, match="not_connected") as info:
            await d.runtime.ping(stranger, 2.0)
        assert info.value.reason == "not_connected" and info.value.peer_id == stranger
        assert time.monotonic() - started < 2.0
        with pytest.raises(PingError) as bad:
            await d.runtime.ping("notapeer")
        assert bad.value.reason == "invalid_peer_id"
        # A deadline that cannot be met is a timeout, not a hang.
        with pytest.raises(PingError) as slow:
            await d.runtime.ping(e.peer_id, 0.0)
        assert slow.value.reason == "timeout"
        # The connection is still usable after the aborted ping.
        assert 0 < await d.runtime.ping(e.peer_id) < 1000

        # Once the peer is gone the ping fails within its timeout instead of hanging.
        await e.runtime.stop()
        started = time.monotonic()
        with pytest.raises(PingError) as gone:
            await d.runtime.ping(e.peer_id, 2.0)
        assert gone.value.reason in {"not_connected", "ping_failed", "timeout"}
        assert time.monotonic() - started < 3.0
    finally:
        await stop_all([d, e])


@pytest.mark.anyio
async def test_runtime_not_running() -> None:
    member = make_member()
    with pytest.raises(RuntimeError, match="not running"):
        await member.runtime.snapshot()
    with pytest.raises(RuntimeError, match="not running"):
        await member.runtime.ping(member.peer_id)
    await member.runtime.stop()  # stopping a never-started runtime is a no-op


@pytest.mark.anyio
async def test_large_message_right_after_connect_does_not_silence_the_peer() -> None:
    """py-libp2p 0.8.1 interleaves a >64 KiB RPC with concurrent writes on the same stream
    (yamux locks per frame); the receiver then drops the stream and never hears the peer
    again. MeshNode serialises writes per stream, so every message still arrives."""
    sender, receiver = make_member(), make_member()
    try:
        await start_all([sender, receiver])
        assert (await sender.runtime.connect(receiver.peer_id, [receiver.addr])).connected
        for i in range(10):  # no warm-up: the first big one races the subscription exchange
            await sender.runtime.publish(META_DISCUSSION, b"x" * 100_000)
            await sender.runtime.publish(COORDINATION, encode({"type": "small", "i": i}))

        async def all_small_arrived() -> bool:
            small = {
                decode(m.data).payload["i"] for m in receiver.received() if m.topic == COORDINATION
            }  # type: ignore[union-attr]
            return small == set(range(10))

        async def republish_until_heard() -> bool:
            # GossipSub may legitimately drop messages published before the mesh exists;
            # what must not happen is the stream dying. Keep going until all 10 arrive.
            if await all_small_arrived():
                return True
            for i in range(10):
                await sender.runtime.publish(COORDINATION, encode({"type": "small", "i": i}))
            return await all_small_arrived()

        await wait_for(republish_until_heard, "small messages after 100 KB ones")
        assert any(len(m.data) == 100_000 for m in receiver.received())
    finally:
        await stop_all([sender, receiver])


@pytest.mark.anyio
async def test_a_burst_beyond_the_outbound_queue_is_counted_not_silent() -> None:
    """publish() succeeds even when GossipSub then drops the message because the peer's
    outbound queue is full; the node counts every such drop."""
    sender, receiver = make_member(), make_member()
    try:
        await start_all([sender, receiver])
        assert (await sender.runtime.connect(receiver.peer_id, [receiver.addr])).connected

        async def warm() -> bool:
            await sender.runtime.publish(COORDINATION, encode({"type": "warm"}))
            return any(m.topic == COORDINATION for m in receiver.received())

        await wait_for(warm, "first message through")
        burst = sender.runtime.node.config.outbound_queue + 500

        async def publish_burst() -> None:  # in trio, without yielding to the writer
            for i in range(burst):
                await sender.runtime.node.publish(COORDINATION, encode({"type": "b", "i": i}))

        await sender.runtime.call(publish_burst)
        snap = await sender.runtime.snapshot()
        assert snap.outbound_dropped.get("queue_full", 0) >= 1
        assert snap.outbound_dropped["queue_full"] <= burst
    finally:
        await stop_all([sender, receiver])


@pytest.mark.anyio
async def test_a_failing_consumer_is_counted_and_the_node_keeps_delivering(caplog) -> None:
    sender, receiver = make_member(), make_member(fail_on=b"poison")
    try:
        await start_all([sender, receiver])
        assert (await sender.runtime.connect(receiver.peer_id, [receiver.addr])).connected

        async def delivered_after_poison() -> bool:
            await sender.runtime.publish(COORDINATION, encode({"type": "poison"}))
            await sender.runtime.publish(COORDINATION, encode({"type": "fine"}))
            return any(b"fine" in m.data for m in receiver.received())

        await wait_for(delivered_after_poison, "a good message after a poisoned one")
        errors = receiver.runtime.node.counters.consumer_errors
        assert errors[COORDINATION] >= 1
        failures = [r for r in caplog.records if "message consumer failed" in r.getMessage()]
        assert failures and failures[0].exc_info is not None  # the traceback is kept
        assert len(failures) <= 3  # 1st, 10th, 100th...: a flood is not printed
    finally:
        await stop_all([sender, receiver])


@pytest.mark.anyio
async def test_a_new_subscriber_is_reported_once_per_topic() -> None:
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def subscribed(topic: str, peer_id: str) -> None:  # the node's trio thread
        with lock:
            seen.append((topic, peer_id))

    port = free_port()
    watcher = Member(
        MeshRuntime(MeshNode(NodeConfig(HOST, port), on_peer_subscribed=subscribed)), port
    )
    newcomer = make_member()
    try:
        await start_all([watcher, newcomer])
        assert (await newcomer.runtime.connect(watcher.peer_id, [watcher.addr])).connected

        async def all_topics() -> bool:
            with lock:
                return {t for t, _ in seen} == set(ALL_TOPICS)

        await wait_for(all_topics, "the newcomer's three subscriptions")
        with lock:
            assert sorted(seen) == sorted((t, newcomer.peer_id) for t in ALL_TOPICS)
    finally:
        await stop_all([watcher, newcomer])
