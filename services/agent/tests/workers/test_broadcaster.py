"""The availability broadcast: on its period, and soon after a peer newly subscribes."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time

import pytest

from chorus_agent.domain.availability import WorkState
from chorus_agent.metrics import AgentMetrics
from chorus_agent.workers import broadcaster as module
from chorus_agent.workers.broadcaster import Broadcaster
from meshcommon import topics
from meshcommon.neighbours import Neighbour, parse_report
from meshcommon.p2p.types import NodeSnapshot
from meshcommon.waiting import wait_until_async

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


PEER = "12D3KooWBChRxNoL2XZR2ys1MTyaBFuKgbWwE5LmUoLAWRF3iqHh"


class FakeRuntime:
    peer_id = "12D3KooWSelf"

    def __init__(self) -> None:
        self.published: list[tuple[float, dict[str, object]]] = []

    async def snapshot(self) -> NodeSnapshot:
        return NodeSnapshot(self.peer_id, 9000, (PEER,), topics.ALL_TOPICS)

    async def neighbours(self, known_topics: object) -> tuple[Neighbour, ...]:
        return (Neighbour(PEER, agent_version="js-libp2p/2.9.0", topics=("chorus/x",)),)

    async def publish(self, topic: str, data: bytes) -> None:
        assert topic == topics.COORDINATION
        self.published.append((time.monotonic(), json.loads(data)))


async def test_a_newcomer_gets_an_announcement_soon_and_a_burst_gets_one(monkeypatch) -> None:
    monkeypatch.setattr(module, "FIRST_BROADCAST_DELAY_S", 0.0)
    monkeypatch.setattr(module, "ANNOUNCE_DELAY_S", (0.05, 0.1))
    monkeypatch.setattr(module, "ANNOUNCE_MIN_GAP_S", 0.3)
    runtime = FakeRuntime()
    metrics = AgentMetrics()
    connected = asyncio.Event()
    connected.set()
    b = Broadcaster(
        runtime,  # type: ignore[arg-type]
        WorkState(max_tasks=2),
        metrics,
        name="agent-1",
        version="1",
        interval_s=3600,
        first_connection=connected,
    )
    task = asyncio.create_task(b.run_forever())

    async def published() -> int:
        return len(runtime.published)

    try:
        await wait_until_async(published, lambda n: n == 1, within_s=5, what="first broadcast")
        first_at = runtime.published[0][0]
        # Three peers subscribe at once, from the libp2p thread; another topic is ignored.
        for topic in (topics.COORDINATION, topics.COORDINATION, topics.META_DISCUSSION):
            threading.Thread(target=b.peer_subscribed, args=(topic, "12D3KooWNew")).start()
        await wait_until_async(published, lambda n: n == 2, within_s=5, what="announcement")
        await asyncio.sleep(0.5)
        assert len(runtime.published) == 2  # one announcement for the burst
        assert runtime.published[1][0] - first_at >= 0.3  # not closer than the minimum gap
        assert runtime.published[1][1]["node_id"] == runtime.peer_id
        # The neighbours report rides along, in the form the monitor validates.
        (neighbour,) = parse_report(runtime.published[1][1]["neighbours"])
        assert neighbour.agent_version == "js-libp2p/2.9.0" and neighbour.topics == ("chorus/x",)
        get = metrics.registry.get_sample_value
        assert get("chorus_agent_announcements_total", {"reason": "newcomer"}) == 1
        assert get("chorus_agent_announcements_total", {"reason": "first_connection"}) == 1
    finally:
        task.cancel()


async def test_without_newcomers_it_broadcasts_on_its_period(monkeypatch) -> None:
    monkeypatch.setattr(module, "FIRST_BROADCAST_DELAY_S", 0.0)
    runtime = FakeRuntime()
    connected = asyncio.Event()
    connected.set()
    b = Broadcaster(
        runtime,  # type: ignore[arg-type]
        WorkState(max_tasks=2),
        AgentMetrics(),
        name="agent-1",
        version="1",
        interval_s=0.2,
        first_connection=connected,
    )
    task = asyncio.create_task(b.run_forever())

    async def published() -> int:
        return len(runtime.published)

    try:
        await wait_until_async(published, lambda n: n >= 4, within_s=5, what="4 broadcasts")
    finally:
        task.cancel()
    times = [t for t, _ in runtime.published[:4]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.15 <= g < 1.0 for g in gaps), gaps
