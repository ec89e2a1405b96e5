"""DialPool: a dial that hangs never holds up the others or the round that started it."""

from __future__ import annotations

import asyncio
import time

import pytest

from meshcommon.peer.dialing import DialPool


@pytest.mark.anyio
async def test_a_hanging_dial_costs_the_round_its_settle_time_only() -> None:
    pool = DialPool(concurrency=4)
    done: list[str] = []
    release = asyncio.Event()

    async def quick(name: str) -> None:
        await asyncio.sleep(0.01)
        done.append(name)

    async def hang() -> None:
        await release.wait()
        done.append("hang")

    assert pool.start("black-hole", hang)
    for name in ("a", "b", "c"):
        assert pool.start(name, lambda name=name: quick(name))
    assert not pool.start("black-hole", hang)  # one dial per peer at a time
    started = time.monotonic()
    still = await pool.settle(0.5)
    assert time.monotonic() - started < 2.0
    assert sorted(done) == ["a", "b", "c"] and still == 1 and pool.in_flight("black-hole")
    release.set()
    await pool.settle(5)
    assert done[-1] == "hang" and len(pool) == 0
    await pool.aclose()


@pytest.mark.anyio
async def test_concurrency_is_bounded_and_a_failing_dial_is_contained() -> None:
    pool = DialPool(concurrency=2)
    running, peak = 0, 0

    async def dial(fail: bool) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        if fail:
            raise RuntimeError("boom")

    for i in range(6):
        pool.start(f"p{i}", lambda i=i: dial(i == 0))
    await pool.settle(5)
    assert peak == 2 and len(pool) == 0
    assert pool.start("p0", lambda: dial(False))  # the failed one can be dialled again
    await pool.aclose()
