"""HTTP API through httpx.ASGITransport, with agents behind an httpx.MockTransport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import httpx
import pytest
from whoosh_testkit import PEER_A, PEER_B, PEER_C, health_body, make_settings

from meshcommon.models import BootstrapResponse
from whoosh.adapters.discovery.static import StaticSource
from whoosh.app import create_app
from whoosh.wiring import VERSION, build_whoosh

pytestmark = pytest.mark.anyio

AGENTS = ["http://10.0.13.2:8080", "http://10.0.13.3:8080", "http://10.0.13.4:8080"]
TOKEN = "s3cret-admin"


class Agents:
    """Two healthy agents and one answering 500."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: dict[str, Any] = {
            "10.0.13.2": health_body(PEER_A, "10.0.13.2", name="alpha"),
            "10.0.13.3": health_body(PEER_B, "10.0.13.3", name="bravo"),
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        body = self.bodies.get(request.url.host)
        return httpx.Response(200, json=body) if body else httpx.Response(500)


@asynccontextmanager
async def running(**overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Agents]]:
    agents = Agents()
    settings = make_settings(static_agents=AGENTS, health_attempts=2, **overrides)
    agent_http = httpx.AsyncClient(transport=httpx.MockTransport(agents))
    whoosh = build_whoosh(settings, source=StaticSource(AGENTS), http_client=agent_http)
    app = create_app(whoosh=whoosh)
    async with app.router.lifespan_context(app):
        await whoosh.directory.refresh()  # joins (or follows) the startup round
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://whoosh") as api:
            yield api, agents
    assert not agent_http.is_closed, "WHOOSH closed an HTTP client it was lent"
    await agent_http.aclose()


async def test_bootstrap_answers_from_cache() -> None:
    async with running() as (api, agents):
        calls = agents.calls
        for _ in range(5):
            resp = await api.get("/api/v1/bootstrap-peers")
            assert resp.status_code == 200
        assert agents.calls == calls, "bootstrap reads must not poll agents"
    # The pre-rendered body is the documented model, as JSON, with its entity tag.
    assert resp.headers["content-type"] == "application/json" and resp.headers["etag"]
    body = resp.json()
    assert BootstrapResponse.model_validate(body).model_dump(mode="json", by_alias=True) == body
    assert body["count"] == 2
    assert body["summary"] == {
        "expected": 3,
        "discovered": 3,
        "healthy": 2,
        "unreachable": 1,
        "missing": 1,
        "left": 0,
    }
    assert body["updated_at"]
    first = body["bootstrap_peers"][0]
    assert set(first) == {
        "peer_id",
        "name",
        "priority",
        "multiaddr",
        "multiaddrs",
        "conflict",
        "claimants",
        "signed",
        "record_seq",
    }
    assert first["conflict"] is False and first["claimants"] == []
    assert first["signed"] is True and first["record_seq"] > 0
    assert {(p["name"], p["priority"]) for p in body["bootstrap_peers"]} == {
        ("alpha", 1),
        ("bravo", 2),
    }
    assert first["multiaddr"] == first["multiaddrs"][0]


@pytest.mark.parametrize(
    ("token", "header", "expected"),
    [(None, None, 403), (TOKEN, None, 401), (TOKEN, "Bearer wrong", 401), (TOKEN, None, 200)],
)
async def test_refresh_requires_admin(token: str | None, header: str | None, expected: int) -> None:
    if expected == 200:
        header = f"Bearer {TOKEN}"
    headers = {"Authorization": header} if header else {}
    async with running(admin_token=token) as (api, agents):
        calls = agents.calls
        resp = await api.post("/api/v1/discovery/refresh", headers=headers)
        assert resp.status_code == expected, resp.text
        via_get = await api.get("/api/v1/bootstrap-peers?refresh=true", headers=headers)
        assert via_get.status_code == expected
        if expected != 200:
            assert agents.calls == calls
        if expected == 401:
            for answer in (resp, via_get):
                assert answer.headers["www-authenticate"] == "Bearer"
    if expected == 200:
        assert resp.json()["summary"]["healthy"] == 2
        assert resp.json()["count"] == 2
        assert agents.calls > calls
        assert via_get.json()["count"] == 2


async def test_agents_view_names_the_missing_one() -> None:
    async with running() as (api, _agents):
        body = (await api.get("/api/v1/agents")).json()
    assert body["summary"]["expected"] == 3 and body["summary"]["healthy"] == 2
    assert body["source"] == "static"
    assert body["unhealthy"] == ["10.0.13.4:8080"]
    down = body["agents"][0]
    assert down["url"] == "http://10.0.13.4:8080"
    assert (down["state"], down["reason"], down["attempts"]) == ("unreachable", "http_500", 2)
    assert {a["state"] for a in body["agents"][1:]} == {"healthy"}
    assert set(down) >= {
        "url",
        "name",
        "state",
        "reason",
        "detail",
        "peer_id",
        "multiaddrs",
        "rejected_multiaddrs",
        "last_seen",
        "attempts",
        "latency_ms",
    }
    assert body["duplicate_peer_ids"] == []
    assert body["left"] == []  # the response model keeps every field the view has


async def test_health_and_metrics() -> None:
    async with running() as (api, _):
        health = await api.get("/api/health")
        metrics = (await api.get("/metrics")).text
    # 200 is what the container's HEALTHCHECK looks at; the body says how discovery is doing.
    assert health.status_code == 200
    body = health.json()
    assert body["version"] == VERSION == version("whoosh")
    assert body["discovery_source"] == "static"
    assert body["last_round_at"]
    assert body["summary"]["missing"] == 1
    assert "whoosh_agents_healthy 2.0" in metrics
    assert 'whoosh_health_checks_total{result="http_500"}' in metrics


async def test_many_apps_in_one_process() -> None:
    """Each WHOOSH has its own metrics registry: a second one in the process neither fails
    to register its metrics nor reports the first one's numbers."""
    for _ in range(3):
        async with running() as (api, _agents):
            metrics = (await api.get("/metrics")).text
        assert "whoosh_agents_healthy 2.0" in metrics


async def test_conditional_get_and_long_poll_on_the_bootstrap_list() -> None:
    """The list carries an ETag; sent back in If-None-Match it answers 304 while nothing
    changed, and with Prefer: wait=N it holds the request until the list changes."""
    async with running(admin_token=TOKEN) as (api, agents):
        first = await api.get("/api/v1/bootstrap-peers")
        etag = first.headers["etag"]
        assert etag.startswith('"') and first.json()["count"] == 2
        same = await api.get("/api/v1/bootstrap-peers", headers={"If-None-Match": etag})
        assert same.status_code == 304 and same.headers["etag"] == etag and not same.content

        started = time.monotonic()
        timed_out = await api.get(
            "/api/v1/bootstrap-peers", headers={"If-None-Match": etag, "Prefer": "wait=0.3"}
        )
        assert timed_out.status_code == 304 and time.monotonic() - started >= 0.25

        waiting = asyncio.create_task(
            api.get(
                "/api/v1/bootstrap-peers",
                headers={"If-None-Match": etag, "Prefer": "wait=20"},
                timeout=30,
            )
        )
        await asyncio.sleep(0.1)
        assert not waiting.done()
        agents.bodies["10.0.13.4"] = health_body(PEER_C, "10.0.13.4", name="charlie")
        token = {"Authorization": f"Bearer {TOKEN}"}
        refreshed = await api.post("/api/v1/discovery/refresh", headers=token)
        assert refreshed.status_code == 200
        changed = await asyncio.wait_for(waiting, 10)
        assert changed.status_code == 200 and changed.json()["count"] == 3
        assert changed.headers["etag"] != etag


async def test_diagnosis_names_the_failing_agent_and_the_skipped_swarm_checks(tmp_path) -> None:
    # No Docker socket here: the Swarm checks are listed as skipped, with the reason.
    async with running(docker_url=f"unix://{tmp_path}/none.sock") as (api, agents):
        calls = agents.calls
        resp = await api.get("/api/v1/diagnosis")
        assert agents.calls == calls, "a diagnosis must not poll agents"
    assert resp.status_code == 200
    body = resp.json()
    assert body["service"] == "whoosh"
    assert {s["check"] for s in body["skipped"]} == {
        "agent_service_not_found",
        "agent_service_vip",
        "swarm_network_not_found",
        "agent_name_not_a_task",
    }
    assert all("none.sock" in s["reason"] for s in body["skipped"])
    (finding,) = body["findings"]
    assert (finding["id"], finding["severity"], finding["source"]) == (
        "agents_missing",
        "warning",
        "whoosh",
    )
    (row,) = finding["evidence"]["missing"]
    assert (row["url"], row["why"], row["reason"]) == (AGENTS[2], "health_failing", "http_500")
    assert body["summary"] == {"critical": 0, "warning": 1, "info": 0}
