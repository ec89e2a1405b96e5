"""Validation before forwarding and GossipSub v1.1 penalties, on real py-libp2p nodes:
a garbage sender G connected only to A, A connected to B (A and B validate, as agents do).
B never receives G's garbage, A counts it by reason, valid messages keep flowing, and G
ends graylisted at A (its further RPCs ignored and counted)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import pytest
import trio

from meshcommon.gossip import (
    REASON_INVALID_JSON,
    REASON_INVALID_SCHEMA,
    REASON_NODE_ID_NOT_SIGNER,
    REASON_NOT_OBJECT,
    REASON_OVERSIZED,
)
from meshcommon.p2p.node import MeshNode
from meshcommon.p2p.types import NodeConfig, P2POverrides, ReceivedMessage, RejectedMessage
from meshcommon.topics import ALL_TOPICS, CONTEXT_FEEDBACK, COORDINATION, META_DISCUSSION
from meshcommon.waiting import wait_until_async

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
MAX_BYTES = 4096


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # MeshNode runs in trio


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Peer:
    config: NodeConfig
    inbox: list[ReceivedMessage] = field(default_factory=list)
    rejected: list[RejectedMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.node = MeshNode(
            self.config, on_message=self.inbox.append, on_rejected=self.rejected.append
        )

    @property
    def addr(self) -> str:
        return f"/ip4/{HOST}/tcp/{self.config.port}/p2p/{self.node.peer_id}"

    @property
    def id(self) -> str:
        return self.node.peer_id


def availability(node_id: str, **changes: object) -> bytes:
    body: dict[str, object] = {
        "type": "availability",
        "node_id": node_id,
        "available_for_work": True,
        "current_tasks": 0,
        "max_tasks": 1,
        "last_activity": "2026-01-01T00:00:00Z",
        "status": "available",
    }
    body.update(changes)
    return json.dumps(body).encode()


async def wait_for(condition, what: str, within_s: float = 20) -> None:  # type: ignore[no-untyped-def]
    await wait_until_async(condition, within_s=within_s, interval=0.02, what=what)


@asynccontextmanager
async def chain(overrides: P2POverrides) -> AsyncIterator[tuple[Peer, Peer, Peer]]:
    """G (no validation: it sends anything) - A - B, A and B validating with
    ``overrides`` plus the ones that change nothing on the wire (no auto-dialling: B must
    not dial G itself; one retry; big queues), as every node had before they got flags."""
    overrides = replace(overrides, noautodial=True, retry=True, outqueue=True, subqueue=True)

    def validating() -> NodeConfig:
        return NodeConfig(
            HOST,
            free_port(),
            overrides=overrides,
            validate_messages=True,
            max_message_bytes=MAX_BYTES,
        )

    a, b = Peer(validating()), Peer(validating())
    g = Peer(NodeConfig(HOST, free_port()))
    async with trio.open_nursery() as nursery:
        for p in (a, b, g):
            await nursery.start(p.node.serve)
        assert (await b.node.connect(a.id, [a.addr])).connected
        assert (await g.node.connect(a.id, [a.addr])).connected

        async def meshed() -> bool:
            # Both ends of both links: G publishes only to its own mesh (a GRAFT A sent
            # may not have reached it yet), A forwards only to its own.
            wanted = ((a, {b.id, g.id}), (g, {a.id}), (b, {a.id}))
            for peer, ids in wanted:
                mesh = (await peer.node.snapshot()).mesh_peers
                if not all(ids <= set(mesh.get(t, ())) for t in ALL_TOPICS):
                    return False
            return True

        await wait_for(meshed, "A meshed with G and with B on every topic, both ways")
        yield g, a, b
        nursery.cancel_scope.cancel()


def rejected_at(peer: Peer) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, reason), n in peer.node.counters.rejected.items():
        out[reason] = out.get(reason, 0) + n
    return out


async def scores_of(peer: Peer) -> dict[str, dict[str, object]]:
    view = (await peer.node.mesh_view()).to_dict()
    scoring = view["scoring"]
    assert isinstance(scoring, dict)
    return {str(p["peer_id"]): p for p in scoring["peers"]}


@pytest.mark.parametrize("spec", ["all", "graylist"])  # "graylist": no speed override on
async def test_garbage_stops_at_the_first_hop_and_its_sender_is_graylisted(spec: str) -> None:
    async with chain(P2POverrides.parse(spec)) as (g, a, b):
        # Valid messages flow G -> A -> B (and an unknown type is valid).
        await g.node.publish(COORDINATION, availability(g.id))
        await g.node.publish(META_DISCUSSION, b'{"type":"future_type","x":1}')

        async def both_valid_at_b() -> bool:
            return len([m for m in b.inbox if m.from_peer == g.id]) >= 2

        await wait_for(both_valid_at_b, "G's valid messages at B")
        parsed = next(m for m in b.inbox if m.topic == COORDINATION)
        assert parsed.decoded is not None and parsed.decoded.model is not None  # parsed once

        # One of each kind of garbage (a few: not enough to graylist).
        garbage = [
            (META_DISCUSSION, b"{this is not json"),
            (CONTEXT_FEEDBACK, b'{"type":"x","pad":"' + b"x" * MAX_BYTES + b'"}'),
            (CONTEXT_FEEDBACK, b"[1,2,3]"),
            (COORDINATION, availability(g.id, current_tasks="lots")),
            (COORDINATION, availability(a.id)),  # speaks for A
        ]
        for topic, data in garbage:
            await g.node.publish(topic, data)
        expected = {
            REASON_INVALID_JSON: 1,
            REASON_OVERSIZED: 1,
            REASON_NOT_OBJECT: 1,
            REASON_INVALID_SCHEMA: 1,
            REASON_NODE_ID_NOT_SIGNER: 1,
        }

        async def counted() -> bool:
            return rejected_at(a) == expected

        await wait_for(counted, "A counts each garbage message by reason")
        assert {(r.reason, r.from_peer, r.forwarder) for r in a.rejected} == {
            (reason, g.id, g.id) for reason in expected
        }
        assert (META_DISCUSSION, REASON_INVALID_JSON) in a.node.counters.rejected
        scores = await scores_of(a)
        assert scores[g.id]["graylisted"] is False  # a few invalid messages: not yet
        assert float(scores[g.id]["score"]) < 0  # type: ignore[arg-type]

        # A sustained stream (20 invalid messages a second): graylisted within seconds,
        # its further RPCs ignored.
        async def stream_garbage() -> None:
            i = 0
            while True:
                await g.node.publish(META_DISCUSSION, b"not json %d" % i)
                i += 1
                await trio.sleep(0.05)

        async with trio.open_nursery() as sender:
            sender.start_soon(stream_garbage)
            started = trio.current_time()

            async def graylisted_and_ignored() -> bool:
                row = (await scores_of(a)).get(g.id, {})
                return (
                    bool(row.get("graylisted"))
                    and a.node.counters.graylist_ignored_rpcs > 0
                    and a.node.counters.graylisted_peers == 1
                )

            await wait_for(graylisted_and_ignored, "G graylisted at A, its RPCs ignored")
            took = trio.current_time() - started
            row = (await scores_of(a))[g.id]
            sender.cancel_scope.cancel()
        # The time is printed, not asserted (a busy machine delays heartbeats); the wait
        # above bounds it at 20 s.
        print(f"graylisted {took:.1f} s into a stream of 20 invalid messages/s")
        assert row["graylisted_since"] is not None
        assert row["graylisted_until"] is not None
        assert row["graylisted_until"] > row["graylisted_since"]  # type: ignore[operator]
        assert int(row["rpcs_ignored"]) > 0  # type: ignore[call-overload]
        # (graylisted_peers is a gauge: once the stream stops, the score decays back above
        # the threshold, so it is read inside the wait above, not after.)
        snap = await a.node.snapshot()
        assert snap.graylisted == (g.id,) or a.node.counters.graylistings >= 1
        assert snap.rejected[REASON_INVALID_JSON] >= 1
        assert a.node.counters.graylistings >= 1

        # A's own valid messages still reach B; B saw no garbage and rejected nothing.
        await a.node.publish(COORDINATION, availability(a.id))

        async def a_heard_at_b() -> bool:
            return any(m.from_peer == a.id for m in b.inbox)

        await wait_for(a_heard_at_b, "A's message at B")
        assert all(m.decoded is not None for m in b.inbox)
        assert [m.data for m in b.inbox if m.from_peer == g.id] == [
            availability(g.id),
            b'{"type":"future_type","x":1}',
        ]
        assert rejected_at(b) == {}
        assert b.rejected == []
        assert g.id not in await scores_of(b)


async def test_without_the_override_upstream_graylist_ignores_nothing() -> None:
    """Regression: py-libp2p 0.8.1 graylists only GRAFTs and gossip; with every override
    off, validation still holds (B gets no garbage, A counts it) but G's RPCs are read."""
    async with chain(P2POverrides.parse("none")) as (g, a, b):
        for i in range(60):
            await g.node.publish(META_DISCUSSION, b"not json %d" % i)

        async def all_counted() -> bool:
            return rejected_at(a).get(REASON_INVALID_JSON, 0) == 60

        await wait_for(all_counted, "A counts all 60 (none ignored)")
        await g.node.publish(COORDINATION, availability(g.id))

        async def valid_at_b() -> bool:
            return any(m.from_peer == g.id for m in b.inbox)

        await wait_for(valid_at_b, "G's valid message still forwarded")
        assert a.node.counters.graylist_ignored_rpcs == 0
        assert rejected_at(b) == {}
        assert [m.data for m in b.inbox if m.from_peer == g.id] == [availability(g.id)]
