"""meshcommon.peer.pings: a sweep pings every peer, a bounded number at once, each within
its deadline, and keeps every outcome in order."""

from __future__ import annotations

import asyncio

import pytest

from meshcommon.peer.pings import ping_each

pytestmark = pytest.mark.anyio


async def test_every_outcome_in_order_a_hung_peer_cut_off_at_its_deadline() -> None:
    in_flight = peak = 0

    async def ping(peer_id: str) -> float:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            if peer_id == "hung":
                await asyncio.Event().wait()  # never answers
            if peer_id == "gone":
                raise ConnectionError("not connected")
            await asyncio.sleep(0.01)
            return 1.5
        finally:
            in_flight -= 1

    peers = ["a", "hung", "b", "gone", "c", "d"]
    outcomes = await ping_each(peers, ping, concurrency=2, timeout_s=0.2)
    assert [type(o).__name__ if isinstance(o, Exception) else o for o in outcomes] == [
        1.5, "TimeoutError", 1.5, "ConnectionError", 1.5, 1.5
    ]  # fmt: skip
    assert peak == 2  # never more than the concurrency
