"""GossipSub v1.2 IDONTWANT (the ``idontwant`` override): real nodes on loopback speak
/meshsub/1.2.0, announce a big message to the mesh peers but its forwarder, keep what a
peer announces within a budget, and do not send that peer the message, neither when
forwarding nor from what is already queued for it; each step counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
import trio

pytest.importorskip("libp2p")

from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V12
from libp2p.pubsub.pb import rpc_pb2

from meshcommon.p2p.types import ALL_OVERRIDES, P2POverrides
from meshcommon.topics import COORDINATION

from .conftest import Peer, free_port, wait_for

pytestmark = pytest.mark.anyio

BIG = 600  # bytes: above the default idontwant_min_bytes (512)


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@asynccontextmanager
async def _mesh(count: int, overrides: P2POverrides = ALL_OVERRIDES) -> AsyncIterator[list[Peer]]:
    """``count`` nodes, each connected to and meshed with every other."""
    peers = [Peer(overrides) for _ in range(count)]
    async with trio.open_nursery() as nursery:
        for p in peers:
            await nursery.start(p.node.serve)
        for i, a in enumerate(peers):
            for b in peers[i + 1 :]:
                assert (await a.node.connect(b.node.peer_id, [b.addr])).connected

        async def meshed() -> bool:
            for p in peers:
                mesh = (await p.node.snapshot()).mesh_peers.get(COORDINATION, ())
                if len(mesh) < count - 1:
                    return False
            return True

        await wait_for(meshed, "every node in every other's mesh")
        yield peers
        nursery.cancel_scope.cancel()


def _gs(peer: Peer):  # type: ignore[no-untyped-def]
    gs = peer.node._gossipsub
    assert gs is not None
    return gs


def _next_message_id(peer: Peer) -> bytes:
    """The ID of the next message ``peer`` publishes (origin + seqno, py-libp2p's)."""
    pubsub = peer.node._pubsub
    assert pubsub is not None
    seqno = (pubsub.counter + 1).to_bytes(8, "big")
    return pubsub.get_message_id(
        rpc_pb2.Message(from_id=ID.from_base58(peer.node.peer_id).to_bytes(), seqno=seqno)
    )


async def test_v12_is_negotiated_with_and_without_the_override() -> None:
    for flags in (ALL_OVERRIDES, P2POverrides.parse("all,-idontwant")):
        async with _mesh(2, flags) as (a, b):
            assert _gs(a).peer_protocol[ID.from_base58(b.node.peer_id)] == PROTOCOL_ID_V12
            assert _gs(b).peer_protocol[ID.from_base58(a.node.peer_id)] == PROTOCOL_ID_V12


async def test_big_messages_are_announced_to_the_other_mesh_peers_small_ones_not() -> None:
    async with _mesh(3) as (a, b, c):
        for i in range(10):
            await a.node.publish(COORDINATION, f"{i:04d}".encode() + b"s" * 200)

        async def small_arrived() -> bool:
            return len(b.inbox) >= 10 and len(c.inbox) >= 10

        await wait_for(small_arrived, "10 small messages at b and c")
        assert sum(p.node.counters.idontwant["sent"] for p in (a, b, c)) == 0

        for i in range(10):
            await a.node.publish(COORDINATION, f"{i:04d}".encode() + b"b" * BIG)

        async def big_announced() -> bool:
            got = sum(p.node.counters.idontwant["received"] for p in (b, c))
            return len(b.inbox) >= 20 and len(c.inbox) >= 20 and got >= 10

        await wait_for(big_announced, "10 big messages announced between b and c")
        # Each big message reached b or c first from a (its origin and forwarder, never
        # told), and that one told the other; the origin is never told.
        sent = [p.node.counters.idontwant["sent"] for p in (a, b, c)]
        assert sent[0] == 0 and 10 <= sent[1] + sent[2] <= 20
        assert a.node.counters.idontwant["received"] == 0
        assert sorted(b.inbox) == sorted(c.inbox)  # every message still arrives


async def test_a_message_the_peer_said_it_has_is_not_sent_to_it() -> None:
    async with _mesh(2) as (a, b):
        a_id, b_id = ID.from_base58(a.node.peer_id), ID.from_base58(b.node.peer_id)
        skipped = _next_message_id(a)
        await _gs(b).emit_idontwant([skipped], a_id)

        async def kept() -> bool:
            return a.node.counters.idontwant["received"] == 1

        await wait_for(kept, "a keeps b's IDONTWANT")
        await a.node.publish(COORDINATION, b"skipped " + b"x" * BIG)
        assert a.node.counters.idontwant["honoured"] == 1
        await a.node.publish(COORDINATION, b"sent " + b"x" * BIG)

        async def second_arrived() -> bool:
            return len(b.inbox) >= 1

        await wait_for(second_arrived, "the next message at b")
        assert [m[:5] for m in b.inbox] == [b"sent "]

        # Queued before the IDONTWANT came: taken out when the queue is written.
        other = rpc_pb2.Message(from_id=b"o", seqno=b"1", data=b"other")
        gone = rpc_pb2.Message(
            from_id=ID.from_base58(a.node.peer_id).to_bytes(),
            seqno=(a.node._pubsub.counter - 1).to_bytes(8, "big"),  # type: ignore[union-attr]
            data=b"gone",
        )
        queued = rpc_pb2.RPC(publish=[gone, other])
        slim = _gs(a).strip_unwanted(b_id, queued)
        assert slim is not None and [m.data for m in slim.publish] == [b"other"]
        assert len(queued.publish) == 2  # the shared RPC itself is not changed
        assert _gs(a).strip_unwanted(b_id, rpc_pb2.RPC(publish=[gone])) is None
        assert a.node.counters.idontwant["honoured"] == 3


async def test_a_peers_ids_beyond_the_budget_are_counted_not_kept() -> None:
    async with _mesh(2) as (a, b):
        budget = _gs(a).idontwant_budget
        ids = [i.to_bytes(8, "big") for i in range(budget + 88)] + [b"x" * 300]
        await _gs(b).emit_idontwant(ids, ID.from_base58(a.node.peer_id))

        async def counted() -> bool:
            return a.node.counters.idontwant["over_budget"] > 0

        await wait_for(counted, "the IDs beyond the budget counted")
        assert a.node.counters.idontwant["received"] == budget
        assert a.node.counters.idontwant["over_budget"] == 89
        kept = _gs(a).dont_send_message_ids[ID.from_base58(b.node.peer_id)]
        assert len(kept) == budget
        # A heartbeat moves them to "before" (still honoured), the next one drops them.
        gs = _gs(a)
        gs._prune_idontwant_entries()
        assert gs.unwanted(ID.from_base58(b.node.peer_id), ids[0])
        gs._prune_idontwant_entries()
        assert not gs.unwanted(ID.from_base58(b.node.peer_id), ids[0])


async def test_upstream_behaviour_without_the_override_still_delivers() -> None:
    flags = replace(P2POverrides.parse("all,-idontwant"))
    async with _mesh(3, flags) as (a, b, c):
        for i in range(10):
            await a.node.publish(COORDINATION, f"{i:04d}".encode() + b"b" * BIG)

        async def arrived() -> bool:
            return len(b.inbox) >= 10 and len(c.inbox) >= 10

        await wait_for(arrived, "10 messages at b and c")
        assert sum(sum(p.node.counters.idontwant.values()) for p in (a, b, c)) == 0


def test_settings_reach_the_gossipsub_of_a_node() -> None:
    """GOSSIP_DEGREE sets D and the 2D/3..2D bounds (6 -> 4..12 as before);
    IDONTWANT_MIN_BYTES the announcement threshold."""
    from meshcommon.config import PeerSettings
    from meshcommon.p2p.node import MeshNode
    from meshcommon.p2p.types import NodeConfig

    default = NodeConfig.for_peer(PeerSettings())
    assert (default.degree, default.degree_low, default.degree_high) == (6, 4, 12)
    config = NodeConfig.for_peer(
        PeerSettings(
            p2p_host="127.0.0.1", p2p_port=free_port(), gossip_degree=4, idontwant_min_bytes=0
        )
    )
    assert (config.degree, config.degree_low, config.degree_high) == (4, 2, 8)
    with pytest.raises(ValueError):
        PeerSettings(gossip_degree=0)

    async def built() -> None:
        node = MeshNode(config)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.serve)
            gs = _gs_of(node)
            assert (gs.degree, gs.degree_low, gs.degree_high) == (4, 2, 8)
            assert gs.idontwant_min_bytes == 0 and gs.idontwant_budget == 512
            nursery.cancel_scope.cancel()

    trio.run(built)


def _gs_of(node):  # type: ignore[no-untyped-def]
    assert node._gossipsub is not None
    return node._gossipsub
