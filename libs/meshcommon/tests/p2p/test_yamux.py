"""yamux.LeanYamux (override ``yamux``): go-yamux window updates and a batched frame
loop, against a stock py-libp2p node."""

from __future__ import annotations

import pytest
import trio

pytest.importorskip("libp2p")

from meshcommon.p2p.types import P2POverrides
from meshcommon.p2p.yamux import LeanYamux, LeanYamuxStream
from meshcommon.topics import COORDINATION
from meshcommon.waiting import wait_until_async

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # MeshNode runs in trio


async def test_installed_only_with_its_flag(stock_pair) -> None:  # type: ignore[no-untyped-def]
    async with stock_pair(P2POverrides.parse("yamux")) as (stock, tuned):
        tuned_conns = [c for cs in tuned.node._host.get_network().connections.values() for c in cs]
        stock_conns = [c for cs in stock.node._host.get_network().connections.values() for c in cs]
        assert all(isinstance(c.muxed_conn, LeanYamux) for c in tuned_conns)
        assert not any(isinstance(c.muxed_conn, LeanYamux) for c in stock_conns)
        streams = [s for c in tuned_conns for s in c.muxed_conn.streams.values()]
        assert streams and all(isinstance(s, LeanYamuxStream) for s in streams)


async def test_bulk_transfer_never_starves_the_sender_of_window(stock_pair) -> None:  # type: ignore[no-untyped-def]
    """go-yamux window updates: the stock sender keeps credit all along, and the
    receiver sends a few updates instead of one per read."""
    async with stock_pair(P2POverrides()) as (stock, tuned):
        written: list[int] = []
        for conns in tuned.node._host.get_network().connections.values():
            for conn in conns if isinstance(conns, list) else [conns]:
                muxed = conn.muxed_conn
                original = muxed._write_frame

                async def counting(data: bytes, original=original) -> None:  # type: ignore[no-untyped-def]
                    written.append(data[1])  # the frame type
                    await original(data)

                muxed._write_frame = counting
        streams = [
            s
            for conns in stock.node._host.get_network().connections.values()
            for c in (conns if isinstance(conns, list) else [conns])
            for s in c.muxed_conn.streams.values()
        ]
        waits_before = sum(s._zero_window_waits for s in streams)
        tuned.inbox.clear()
        for i in range(100):  # 5 MB
            await stock.node.publish(COORDINATION, f"{i:06d}".encode() + b"y" * 49_994)
            await trio.sleep(0.002)

        async def all_there() -> bool:
            return len(tuned.inbox) >= 100

        await wait_until_async(all_there, within_s=15, interval=0.02, what="100 x 50 KB")
        assert sum(s._zero_window_waits for s in streams) == waits_before
        window_updates = sum(1 for typ in written if typ == 1)
        assert window_updates <= 5 * 1024 * 1024 // (64 * 1024)  # stock: one per read
