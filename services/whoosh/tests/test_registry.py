"""AgentRegistry: rounds, single-flight refresh, cached reads, surviving discovery errors."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from whoosh_testkit import PEER_A, PEER_B, health_body, make_poller, make_settings

from whoosh.domain.targets import AgentTarget, DiscoveryResult
from whoosh.metrics import Metrics
from whoosh.registry import AgentRegistry

pytestmark = pytest.mark.anyio

BODIES = {
    "10.0.13.2": health_body(PEER_A, "10.0.13.2"),
    "10.0.13.3": health_body(PEER_B, "10.0.13.3"),
}


class ScriptedSource:
    name = "scripted"

    def __init__(self, *results: DiscoveryResult) -> None:
        self.results = list(results)
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def discover(self) -> DiscoveryResult:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.results[min(self.calls, len(self.results)) - 1]


def targets(*ips: str) -> tuple[AgentTarget, ...]:
    return tuple(AgentTarget(f"http://{ip}:8080", ip, ip) for ip in ips)


def agents_client() -> tuple[httpx.AsyncClient, list[str]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        body = BODIES.get(request.url.host)
        return httpx.Response(200, json=body) if body else httpx.Response(503)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


def make_registry(source: ScriptedSource, client: httpx.AsyncClient) -> AgentRegistry:
    settings = make_settings(health_attempts=1)
    metrics = Metrics()
    return AgentRegistry(source, make_poller(settings, client, metrics), metrics, 3600)


async def test_round_builds_snapshot_and_metrics() -> None:
    client, _ = agents_client()
    source = ScriptedSource(DiscoveryResult(targets("10.0.13.2", "10.0.13.3", "10.0.13.4"), 3, "s"))
    registry = make_registry(source, client)
    assert registry.snapshot.updated_at is None
    snap = await registry.refresh()
    assert snap.summary.model_dump() == {
        "expected": 3,
        "discovered": 3,
        "healthy": 2,
        "unreachable": 1,
        "missing": 1,
    }
    assert [p.priority for p in snap.bootstrap.bootstrap_peers] == [1, 2]
    m = registry.metrics.registry
    assert m.get_sample_value("whoosh_agents_healthy") == 2
    assert m.get_sample_value("whoosh_agents_expected") == 3
    assert m.get_sample_value("whoosh_poll_round_seconds_count") == 1


async def test_refresh_is_single_flight() -> None:
    client, seen = agents_client()
    source = ScriptedSource(DiscoveryResult(targets("10.0.13.2"), 1, "s"))
    source.gate = asyncio.Event()
    registry = make_registry(source, client)
    waiters = [asyncio.create_task(registry.refresh()) for _ in range(5)]
    await asyncio.sleep(0)
    source.gate.set()
    snaps = await asyncio.gather(*waiters)
    assert source.calls == 1
    assert len(seen) == 1
    assert all(s is snaps[0] for s in snaps)


async def test_reads_are_fast_and_never_touch_agents() -> None:
    client, seen = agents_client()
    registry = make_registry(ScriptedSource(DiscoveryResult(targets("10.0.13.2"), 1, "s")), client)
    await registry.refresh()
    calls = len(seen)
    started = time.perf_counter()
    for _ in range(1000):
        assert registry.snapshot.bootstrap.count == 1
    assert (time.perf_counter() - started) / 1000 < 0.001
    assert len(seen) == calls


async def test_discovery_error_keeps_polling_known_targets() -> None:
    client, _ = agents_client()
    source = ScriptedSource(
        DiscoveryResult(targets("10.0.13.2"), None, "dns"),
        DiscoveryResult((), None, "dns", "cannot resolve tasks.chorus"),
    )
    registry = make_registry(source, client)
    await registry.refresh()
    snap = await registry.refresh()
    assert snap.discovery_error == "cannot resolve tasks.chorus"
    assert snap.bootstrap.count == 1
    value = registry.metrics.registry.get_sample_value(
        "whoosh_discovery_errors_total", {"source": "dns"}
    )
    assert value == 1


async def test_loop_runs_first_round_immediately_and_stops() -> None:
    client, _ = agents_client()
    source = ScriptedSource(DiscoveryResult(targets("10.0.13.2"), 1, "s"))
    registry = make_registry(source, client)
    await registry.start()
    try:
        deadline = time.monotonic() + 10
        while registry.snapshot.updated_at is None:
            assert time.monotonic() < deadline, "first round never finished"
            await asyncio.sleep(0.01)
    finally:
        await registry.stop()
    assert source.calls == 1
