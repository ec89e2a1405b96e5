"""pubsub.MeshPubsub and MeshGossipSub: the pubsub overrides (inline, record, sig,
novalcache, noforward, direct, coalesce, graylist, outqueue, subqueue) switched on one by
one by the door; the queue sizes per node, never through libp2p's module global."""

from __future__ import annotations

import pytest
import trio

pytest.importorskip("libp2p")

import libp2p.pubsub.pubsub as pubsub_module

from meshcommon.p2p.types import NO_OVERRIDES, NodeConfig, P2POverrides
from meshcommon.topics import COORDINATION

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


async def test_queue_sizes_are_per_node_and_no_module_global_is_set() -> None:
    """Two nodes in one process, each with its own subscription queue; libp2p's global
    stays 32 (upstream's value, what a node without the subqueue override gets)."""
    from meshcommon.p2p.node import MeshNode

    before = pubsub_module.SUBSCRIPTION_CHANNEL_SIZE
    big = MeshNode(NodeConfig("127.0.0.1", 0, subscription_queue=700, outbound_queue=900))
    stock = MeshNode(NodeConfig("127.0.0.1", 0, subscription_queue=700, overrides=NO_OVERRIDES))
    async with trio.open_nursery() as nursery:
        await nursery.start(big.serve)
        await nursery.start(stock.serve)
        assert pubsub_module.SUBSCRIPTION_CHANNEL_SIZE == before == 32

        def size(node: MeshNode) -> float:
            assert node._pubsub is not None
            send = node._pubsub.subscribed_topics_send[COORDINATION]
            return float(send.statistics().max_buffer_size)

        assert (size(big), size(stock)) == (700, 32)
        assert big._gossipsub is not None and stock._gossipsub is not None
        assert (big._gossipsub.outbound_queue, stock._gossipsub.outbound_queue) == (900, None)
        nursery.cancel_scope.cancel()


async def test_the_classes_start_as_upstream_and_the_door_switches_paths_on() -> None:
    from meshcommon.p2p.node import MeshNode

    flags = P2POverrides.parse("inline,coalesce,noforward")
    node = MeshNode(NodeConfig("127.0.0.1", 0, overrides=flags))
    async with trio.open_nursery() as nursery:
        await nursery.start(node.serve)
        assert node._pubsub is not None and node._gossipsub is not None
        on = node._pubsub._overrides
        assert (on.inline, on.coalesce, on.direct, on.novalcache) == (True, True, False, False)
        assert node._gossipsub._overrides.noforward and not node._gossipsub._overrides.record
        assert node._pubsub.subscription_queue is None  # subqueue off: upstream's channel
        nursery.cancel_scope.cancel()


async def test_direct_off_delivers_through_the_subscription_channel(stock_pair, exchange) -> None:  # type: ignore[no-untyped-def]
    async with stock_pair(P2POverrides.parse("all,-direct")) as (stock, tuned):
        await exchange(stock, tuned)
