"""A peer that sent us a message is not sent it back (the ``heard`` override): real nodes
on loopback. A duplicate from a peer marks the message as had by that peer (two
heartbeats, within a budget); what is still queued for the peer loses it; counted."""

from __future__ import annotations

import pytest

pytest.importorskip("libp2p")

from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from meshcommon.p2p.types import ALL_OVERRIDES, P2POverrides
from meshcommon.topics import COORDINATION

from .conftest import Peer, wait_for
from .test_idontwant import _gs, _mesh, anyio_backend  # noqa: F401  (fixture)

pytestmark = pytest.mark.anyio


async def _published_then_echoed(a: Peer, b: Peer) -> rpc_pb2.Message:
    """``a`` publishes a message; ``b``'s copy of it comes back to ``a`` (a duplicate)."""
    await a.node.publish(COORDINATION, b"echo")

    async def arrived() -> bool:
        return bool(b.inbox)

    await wait_for(arrived, "the message at b")
    pubsub = a.node._pubsub
    assert pubsub is not None
    msg = rpc_pb2.Message(
        from_id=ID.from_base58(a.node.peer_id).to_bytes(),
        seqno=pubsub.counter.to_bytes(8, "big"),
        data=b"echo",
        topicIDs=[COORDINATION],
    )
    await pubsub.push_msg(ID.from_base58(b.node.peer_id), msg)
    return msg


async def test_a_message_the_peer_sent_us_is_taken_out_of_its_queue() -> None:
    async with _mesh(2) as (a, b):
        b_id = ID.from_base58(b.node.peer_id)
        echoed = await _published_then_echoed(a, b)
        gs = _gs(a)
        assert gs.had(b_id, a.node._pubsub.get_message_id(echoed))  # type: ignore[union-attr]
        other = rpc_pb2.Message(from_id=b"o", seqno=b"1", data=b"other")
        queued = rpc_pb2.RPC(publish=[echoed, other])
        slim = gs.strip_unwanted(b_id, queued)
        assert slim is not None and [m.data for m in slim.publish] == [b"other"]
        assert len(queued.publish) == 2  # the RPC shared by every peer is not changed
        assert gs.strip_unwanted(b_id, rpc_pb2.RPC(publish=[echoed])) is None
        assert a.node.counters.idontwant["heard"] == 2
        assert a.node.counters.idontwant["honoured"] == 0
        # Kept for this heartbeat and the next, then forgotten.
        gs._prune_idontwant_entries()
        assert gs.strip_unwanted(b_id, rpc_pb2.RPC(publish=[echoed])) is None
        gs._prune_idontwant_entries()
        kept = gs.strip_unwanted(b_id, rpc_pb2.RPC(publish=[echoed]))
        assert kept is not None and len(kept.publish) == 1


async def test_what_a_peer_sent_is_kept_within_the_budget() -> None:
    async with _mesh(2) as (a, b):
        gs, b_id = _gs(a), ID.from_base58(b.node.peer_id)
        for i in range(gs.idontwant_budget + 10):
            gs.heard(b_id, i.to_bytes(8, "big"))
        gs.heard(b_id, b"x" * 300)  # no message ID of ours
        assert len(gs._heard[b_id]) == gs.idontwant_budget


async def test_without_the_override_nothing_is_kept() -> None:
    async with _mesh(2, P2POverrides.parse("all,-heard")) as (a, b):
        echoed = await _published_then_echoed(a, b)
        b_id = ID.from_base58(b.node.peer_id)
        assert not _gs(a).had(b_id, a.node._pubsub.get_message_id(echoed))  # type: ignore[union-attr]


async def test_every_message_still_arrives_in_a_full_mesh() -> None:
    async with _mesh(4, ALL_OVERRIDES) as peers:
        for i in range(60):
            await peers[i % 4].node.publish(COORDINATION, f"{i:04d}".encode() + b"m" * 250)

        async def arrived() -> bool:
            return all(len(p.inbox) >= 45 for p in peers)

        await wait_for(arrived, "every message at every other node")
        for i, p in enumerate(peers):
            mine = {f"{j:04d}".encode() for j in range(60) if j % 4 == i}
            assert sorted(m[:4] for m in p.inbox) == sorted(
                f"{j:04d}".encode() for j in range(60) if f"{j:04d}".encode() not in mine
            )
