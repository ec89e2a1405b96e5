"""meshcommon's small shared helpers: rate-limited logs, counters read at scrape time,
cancel-and-wait, waiting for a condition."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

from meshcommon.aio import cancel_and_wait
from meshcommon.logs import RateLimitedLog
from meshcommon.metrics import BoundedLabel, TotalsCounter
from meshcommon.waiting import wait_until, wait_until_async


def test_rate_limited_log_says_how_many_it_suppressed(caplog) -> None:
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("t"), interval_s=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        assert limited.warning(("peer", "timeout"), "dial %s failed", "peer")
        for _ in range(5):
            assert not limited.warning(("peer", "timeout"), "dial %s failed", "peer")
        assert limited.warning(("peer", "refused"), "dial %s refused", "peer")  # other key
        now[0] = 11
        assert limited.warning(("peer", "timeout"), "dial %s failed", "peer")
    assert [r.getMessage() for r in caplog.records] == [
        "dial peer failed",
        "dial peer refused",
        "dial peer failed (5 more like it suppressed)",
    ]


def test_rate_limited_log_keys_are_bounded() -> None:
    limited = RateLimitedLog(logging.getLogger("t"), interval_s=60, max_keys=100)
    for i in range(1000):  # forged senders, each a new key
        limited.warning(f"sender-{i}", "bad gossip")
    assert len(limited) <= 100


def test_totals_counter_reads_the_owners_totals_at_scrape_time() -> None:
    registry = CollectorRegistry()
    drops: Counter[str] = Counter()
    TotalsCounter("x_dropped", "drops", "topic", lambda: drops, registry)
    total = [0]
    TotalsCounter("x_lost", "lost", None, lambda: total[0], registry)
    assert registry.get_sample_value("x_dropped_total", {"topic": "a"}) is None
    drops["a"] += 3
    total[0] = 7
    assert registry.get_sample_value("x_dropped_total", {"topic": "a"}) == 3
    assert registry.get_sample_value("x_lost_total") == 7


@pytest.mark.anyio
async def test_cancel_and_wait_stops_every_task_even_a_failed_one() -> None:
    async def forever() -> None:
        await asyncio.sleep(3600)

    async def broken() -> None:
        raise RuntimeError("boom")

    running = asyncio.create_task(forever())
    failed = asyncio.create_task(broken())
    await asyncio.sleep(0)
    await cancel_and_wait(running, failed, None)
    assert running.cancelled() and failed.done()


def test_wait_until_returns_the_value_and_names_what_it_waited_for() -> None:
    calls = iter([None, KeyError("x"), 5])

    def probe() -> int | None:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    value, waited = wait_until(probe, within_s=5, interval=0.001)
    assert value == 5 and waited < 5
    with pytest.raises(TimeoutError, match="waiting for the answer; last: 0"):
        wait_until(lambda: 0, within_s=0.05, interval=0.01, what="the answer")


@pytest.mark.anyio
async def test_wait_until_async_uses_the_predicate() -> None:
    seen = []

    async def probe() -> int:
        seen.append(1)
        return len(seen)

    value, _ = await wait_until_async(probe, lambda n: n >= 3, within_s=5, interval=0.001)
    assert value == 3


def test_totals_counter_exports_known_label_values_from_the_start() -> None:
    """A first drop must be an increase a rule sees: the series exists at 0 before it."""
    registry = CollectorRegistry()
    dropped: Counter[str] = Counter()
    TotalsCounter("t_dropped", "drops", "topic", lambda: dropped, registry, always=("a", "b"))
    assert registry.get_sample_value("t_dropped_total", {"topic": "a"}) == 0
    dropped["b"] += 2
    dropped["c"] += 1
    assert registry.get_sample_value("t_dropped_total", {"topic": "b"}) == 2
    assert registry.get_sample_value("t_dropped_total", {"topic": "c"}) == 1


def test_bounded_label_keeps_the_series_count_bounded() -> None:
    label = BoundedLabel(3, known=("availability",))
    assert [label(v) for v in ("availability", "task", "vote", "spam1", "task")] == [
        "availability",
        "task",
        "vote",
        BoundedLabel.OTHER,
        "task",
    ]
    assert {label(f"invented-{i}") for i in range(1000)} == {BoundedLabel.OTHER}


def test_library_floods_are_cut_to_one_line_per_message_per_interval() -> None:
    import logging

    from meshcommon.logs import LibraryFloodFilter

    now = [0.0]
    flood = LibraryFloodFilter(interval_s=60.0, clock=lambda: now[0])

    def record(name: str, msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)

    tcp = "libp2p.transport.tcp.tcp"
    passed = [
        flood.filter(record(tcp, "Failed to open TCP stream: %s", f"addr {i}")) for i in range(1000)
    ]
    assert passed.count(True) == 1  # 1,000 failed dials, one line
    assert flood.filter(record(tcp, "another message"))  # a different message still shows
    assert flood.filter(record("chorus_agent.workers", "not a library"))
    now[0] += 61
    again = record(tcp, "Failed to open TCP stream: %s", "addr x")
    assert flood.filter(again) and "999 more like it suppressed" in again.getMessage()
