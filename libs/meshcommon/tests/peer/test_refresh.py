"""The refresh loop: news is acted on at once, no news is paced, a bad round is survived."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from meshcommon.peer import refresh
from meshcommon.peer.refresh import run_refresh_rounds
from meshcommon.waiting import wait_until_async


@pytest.mark.anyio
async def test_rounds_follow_news_and_are_paced_without_it(monkeypatch) -> None:
    monkeypatch.setattr(refresh, "MIN_ROUND_GAP_S", 0.01)
    script = ["news", "boom", "quiet", "quiet", "news"]
    calls: list[tuple[float, float]] = []  # (wait_s asked, when)

    async def round_(wait_s: float) -> bool:
        calls.append((wait_s, time.monotonic()))
        step = script[min(len(calls), len(script)) - 1]
        if step == "boom":
            raise RuntimeError("a bad round")
        return step == "news"  # returns at once: a WHOOSH that does not hold requests

    async def rounds_run() -> int:
        return len(calls)

    task = asyncio.create_task(run_refresh_rounds(round_, lambda: 0.2, what="test"))
    try:
        await wait_until_async(rounds_run, lambda n: n >= 5, within_s=10, what="5 rounds")
    finally:
        task.cancel()
    assert calls[0][0] == 0.0  # the first round does not wait
    assert all(wait == 0.2 for wait, _ in calls[1:])
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(calls)]
    assert gaps[0] < 0.15  # after news: at once
    # after an error or a quiet round that came back early: the rest of the wait
    assert all(gap >= 0.15 for gap in gaps[1:4]), gaps
