"""AgentDirectory: rounds, single-flight refresh, surviving discovery errors, its loop."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from whoosh_testkit import PEER_A, PEER_B, health_body, make_poller, make_settings

from meshcommon.waiting import wait_until_async
from whoosh.domain.targets import AgentTarget, DiscoveryResult, StoppedTask
from whoosh.metrics import WhooshMetrics
from whoosh.workers.directory import AgentDirectory, Snapshot

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


def make_directory(
    source: ScriptedSource, client: httpx.AsyncClient, **converge: float
) -> AgentDirectory:
    settings = make_settings(health_attempts=1)
    metrics = WhooshMetrics()
    converge.setdefault("converge_window_s", 0.0)
    return AgentDirectory(source, make_poller(settings, client, metrics), metrics, 3600, **converge)


async def test_round_builds_snapshot_and_metrics() -> None:
    client, _ = agents_client()
    source = ScriptedSource(DiscoveryResult(targets("10.0.13.2", "10.0.13.3", "10.0.13.4"), 3, "s"))
    directory = make_directory(source, client)
    assert directory.snapshot.updated_at is None
    snap = await directory.refresh()
    assert snap.summary.model_dump() == {
        "expected": 3,
        "discovered": 3,
        "healthy": 2,
        "unreachable": 1,
        "missing": 1,
        "left": 0,
    }
    assert [p.priority for p in snap.bootstrap.bootstrap_peers] == [1, 2]
    m = directory.metrics.registry
    assert m.get_sample_value("whoosh_agents_healthy") == 2
    assert m.get_sample_value("whoosh_agents_expected") == 3
    assert m.get_sample_value("whoosh_poll_round_seconds_count") == 1


async def test_refresh_is_single_flight() -> None:
    client, seen = agents_client()
    source = ScriptedSource(DiscoveryResult(targets("10.0.13.2"), 1, "s"))
    source.gate = asyncio.Event()
    directory = make_directory(source, client)
    waiters = [asyncio.create_task(directory.refresh()) for _ in range(5)]
    await asyncio.sleep(0)
    source.gate.set()
    snaps = await asyncio.gather(*waiters)
    assert source.calls == 1
    assert len(seen) == 1
    assert all(s is snaps[0] for s in snaps)


async def test_discovery_error_keeps_polling_known_targets() -> None:
    client, _ = agents_client()
    source = ScriptedSource(
        DiscoveryResult(targets("10.0.13.2"), None, "dns"),
        DiscoveryResult((), None, "dns", "cannot resolve tasks.chorus"),
    )
    directory = make_directory(source, client)
    await directory.refresh()
    snap = await directory.refresh()
    assert snap.discovery_error == "cannot resolve tasks.chorus"
    assert snap.bootstrap.count == 1
    value = directory.metrics.registry.get_sample_value(
        "whoosh_discovery_errors_total", {"source": "dns"}
    )
    assert value == 1


async def test_loop_runs_first_round_immediately_and_stops() -> None:
    client, _ = agents_client()
    source = ScriptedSource(DiscoveryResult(targets("10.0.13.2"), 1, "s"))
    directory = make_directory(source, client)
    await directory.start()

    async def snapshot() -> Snapshot:
        return directory.snapshot

    try:
        await wait_until_async(
            snapshot, lambda snap: snap.updated_at is not None, within_s=10, what="first round"
        )
    finally:
        await directory.stop()
    assert source.calls == 1
    assert directory.snapshot.bootstrap.count == 1


async def test_converging_rechecks_only_the_agents_not_healthy_yet() -> None:
    """An agent still starting is asked again every converge_poll_s; one already healthy
    is not asked again before the period; once all are healthy the fast checks stop."""
    asked: list[str] = []
    ready: set[str] = {"10.0.13.2"}

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        if request.url.host in ready:
            return httpx.Response(200, json=BODIES[request.url.host])
        raise httpx.ConnectError("connection refused")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    source = ScriptedSource(DiscoveryResult(targets("10.0.13.2", "10.0.13.3"), 2, "s"))
    directory = make_directory(source, client, converge_poll_s=0.05, converge_window_s=30)
    await directory.start()

    async def snapshot() -> Snapshot:
        return directory.snapshot

    async def asked_so_far() -> list[str]:
        return list(asked)

    try:
        await wait_until_async(
            asked_so_far,
            lambda seen: seen.count("10.0.13.3") >= 3,
            within_s=10,
            what="the starting agent asked again",
        )
        assert asked.count("10.0.13.2") == 1  # healthy: not asked again
        ready.add("10.0.13.3")
        snap, _ = await wait_until_async(
            snapshot, lambda s: s.summary.healthy == 2, within_s=10, what="2/2 healthy"
        )
        settled = len(asked)
        await asyncio.sleep(0.3)  # several fast periods: nothing left to converge to
        assert len(asked) == settled
        assert snap.bootstrap.count == 2
    finally:
        await directory.stop()
        await client.aclose()


async def test_a_waiting_client_is_answered_as_soon_as_the_list_changes() -> None:
    client, _ = agents_client()
    source = ScriptedSource(
        DiscoveryResult(targets("10.0.13.2"), 2, "s"),
        DiscoveryResult(targets("10.0.13.2", "10.0.13.3"), 2, "s"),
    )
    directory = make_directory(source, client)
    first = await directory.refresh()
    waiter = asyncio.create_task(directory.wait_for_change(first.etag, 30))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # nothing changed yet
    unchanged = await directory.wait_for_change(first.etag, 0.05)
    assert unchanged.etag == first.etag  # timed out: the same list
    await directory.refresh()  # the second agent is listed
    changed = await asyncio.wait_for(waiter, 5)
    assert changed.etag != first.etag and changed.bootstrap.count == 2
    await client.aclose()


async def test_scaled_down_agent_is_listed_as_left_and_wakes_waiting_clients() -> None:
    t2 = AgentTarget("http://10.0.13.2:8080", "CHORUS_chorus.1", "10.0.13.2", task_id="t1")
    t3 = AgentTarget("http://10.0.13.3:8080", "CHORUS_chorus.2", "10.0.13.3", task_id="t2")
    stopped = StoppedTask("t2", 2, False, "remove", "running", True, False, False, False)
    source = ScriptedSource(
        DiscoveryResult((t2, t3), 2, "swarm"),
        # Scaled to 1: slot 2's task is stopped; its agent still answers for a moment.
        DiscoveryResult((t2,), 1, "swarm", stopped=(stopped,)),
    )
    client, _ = agents_client()
    directory = make_directory(source, client)
    first = await directory.refresh()
    assert first.bootstrap.left == [] and first.summary.left == 0
    waiting = asyncio.create_task(directory.wait_for_change(first.etag, 30))
    second = await directory.refresh()
    assert (await asyncio.wait_for(waiting, 5)).etag == second.etag != first.etag
    assert [(p.peer_id, p.reason) for p in second.bootstrap.left] == [(PEER_B, "scaled_down")]
    assert [p.peer_id for p in second.bootstrap.bootstrap_peers] == [PEER_A]
    assert second.summary.model_dump() == {
        "expected": 1,
        "discovered": 1,
        "healthy": 1,
        "unreachable": 0,
        "missing": 0,
        "left": 1,
    }
    m = directory.metrics.registry
    assert m.get_sample_value("whoosh_agents_left", {"reason": "scaled_down"}) == 1
