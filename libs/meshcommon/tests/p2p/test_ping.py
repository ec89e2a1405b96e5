"""ping.Pinger (override ``ping``): one ping stream per peer, reused while fresh."""

from __future__ import annotations

import pytest

pytest.importorskip("libp2p")

from meshcommon.p2p.types import P2POverrides

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # MeshNode runs in trio


async def test_a_stale_reused_ping_stream_is_replaced(stock_pair) -> None:  # type: ignore[no-untyped-def]
    async with stock_pair(P2POverrides()) as (stock, tuned):
        assert await tuned.node.ping(stock.node.peer_id) > 0
        kept, _ = tuned.node._stack.pinger.streams[stock.node.peer_id]
        await kept.reset()  # as if the peer had closed it
        assert await tuned.node.ping(stock.node.peer_id) > 0
        assert tuned.node._stack.pinger.streams[stock.node.peer_id][0] is not kept


async def test_without_the_override_each_ping_opens_its_own_stream(stock_pair) -> None:  # type: ignore[no-untyped-def]
    async with stock_pair(P2POverrides.parse("none")) as (stock, tuned):
        assert await tuned.node.ping(stock.node.peer_id) > 0
        assert await tuned.node.ping(stock.node.peer_id) > 0
        assert tuned.node._stack.pinger.streams == {}
