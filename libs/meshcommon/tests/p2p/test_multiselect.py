"""multiselect.PipelinedMultiselectClient (override ``mss``): handshake and protocol in one
write, answers checked as upstream, against a stock py-libp2p node."""

from __future__ import annotations

import pytest

pytest.importorskip("libp2p")

from libp2p.custom_types import TProtocol

from meshcommon.p2p.multiselect import PipelinedMultiselectClient
from meshcommon.p2p.types import P2POverrides

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


async def test_streams_open_with_a_stock_peer_and_an_unknown_protocol_is_refused(
    stock_pair,  # type: ignore[no-untyped-def]
) -> None:
    async with stock_pair(P2POverrides.parse("mss")) as (stock, tuned):
        assert isinstance(tuned.node._host.multiselect_client, PipelinedMultiselectClient)
        assert not isinstance(stock.node._host.multiselect_client, PipelinedMultiselectClient)
        assert await tuned.node.ping(stock.node.peer_id) > 0  # a new stream, negotiated
        with pytest.raises(Exception) as refused:
            await tuned.node._host.new_stream(_pid(stock), [TProtocol("/nope/1.0.0")])
        assert "not supported" in repr(refused.value) + repr(refused.value.__cause__)


def _pid(peer):  # type: ignore[no-untyped-def]
    from libp2p.peer.id import ID

    return ID.from_base58(peer.node.peer_id)
