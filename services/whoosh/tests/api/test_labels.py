"""The label endpoints in the WHOOSH app, against the fake Gitea."""

from collections.abc import AsyncIterator

import httpx
import pytest
from whoosh_fake_gitea import ADMIN, FAST, TOKEN, FakeGitea, gitea_settings

from whoosh.adapters.discovery.static import StaticSource
from whoosh.app import create_app
from whoosh.service import Whoosh
from whoosh.wiring import build_whoosh

pytestmark = pytest.mark.anyio
REPOS = ["chorus/TEST", "chorus/WHOOSH"]


async def make_client(**overrides: object) -> tuple[httpx.AsyncClient, Whoosh]:
    """The app without its lifespan: no discovery loop, no sync at start-up."""
    settings = gitea_settings(REPOS, **overrides)
    whoosh = build_whoosh(settings, source=StaticSource([]), gitea_retry=FAST)
    transport = httpx.ASGITransport(app=create_app(whoosh=whoosh))
    return httpx.AsyncClient(transport=transport, base_url="http://whoosh"), whoosh


@pytest.fixture
async def api(gitea: FakeGitea, anyio_backend: str) -> AsyncIterator[httpx.AsyncClient]:
    gitea.add_repo("chorus/TEST")
    gitea.add_required("chorus/WHOOSH", skip=("chorus-entrypoint",))
    gitea.label("chorus/WHOOSH", "bug")["color"] = "000000"
    client, whoosh = await make_client()
    async with client:
        yield client
    await whoosh.stop()


async def test_sync_requires_the_admin_token(api: httpx.AsyncClient, gitea: FakeGitea) -> None:
    response = await api.post("/api/v1/labels/sync", json={})
    assert response.status_code == 401
    response = await api.post(
        "/api/v1/labels/sync", json={}, headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert gitea.writes() == []


async def test_dry_run_is_open_and_returns_the_plan(
    api: httpx.AsyncClient, gitea: FakeGitea
) -> None:
    response = await api.post("/api/v1/labels/sync", json={"dry_run": True, "fix_drift": True})
    assert response.status_code == 200
    body = response.json()
    assert body["dry_run"] is True and body["fix_drift"] is True
    test, whoosh = body["repos"]
    assert len(test["to_create"]) == 9 and test["created"] == []
    assert whoosh["to_create"] == ["chorus-entrypoint"] and whoosh["to_update"] == ["bug"]
    assert gitea.writes() == []


async def test_sync_with_token(api: httpx.AsyncClient, gitea: FakeGitea) -> None:
    response = await api.post(
        "/api/v1/labels/sync", headers={"Authorization": f"Bearer {ADMIN}"}
    )  # no body: defaults
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["labels_created"] == 10 and body["labels_updated"] == 0
    assert [r["count"] for r in body["repos"]] == ["9/9", "9/9"]
    assert TOKEN not in response.text


async def test_status_lists_present_missing_drifted(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/labels/status")
    assert response.status_code == 200
    test, whoosh = response.json()["repos"]
    assert test["present"] == [] and len(test["missing"]) == 9 and test["count"] == "0/9"
    assert whoosh["missing"] == ["chorus-entrypoint"] and whoosh["count"] == "8/9"
    assert [d["name"] for d in whoosh["drifted"]] == ["bug"]
    assert whoosh["drifted"][0]["current_color"] == "#000000"
    assert TOKEN not in response.text


async def test_errors_are_in_the_report(api: httpx.AsyncClient, gitea: FakeGitea) -> None:
    gitea.always["chorus/TEST"] = 404
    response = await api.get("/api/v1/labels/status")
    body = response.json()
    assert response.status_code == 200 and body["ok"] is False
    assert body["repos"][0]["status"] == "error" and "(404)" in body["repos"][0]["error"]
    assert body["repos"][1]["status"] == "ok"


async def test_off_without_gitea_url(anyio_backend: str) -> None:
    client, whoosh = await make_client(gitea_url="")
    async with client:
        for response in (
            await client.get("/api/v1/labels/status"),
            await client.post("/api/v1/labels/sync", json={"dry_run": True}),
            await client.post("/api/v1/labels/sync", json={}),  # "off" before "no token"
        ):
            assert response.status_code == 503
            assert "WHOOSH_GITEA_URL" in response.json()["detail"]
    await whoosh.stop()


async def test_bad_config_is_reported(gitea: FakeGitea, anyio_backend: str) -> None:
    client, whoosh = await make_client(labels_extra="{}")
    async with client:
        response = await client.get("/api/v1/labels/status")
    await whoosh.stop()
    assert response.status_code == 500 and "WHOOSH_LABELS_EXTRA" in response.json()["detail"]


@pytest.mark.parametrize("body", [{"fix_drift": 0}, {"dry_run": "yes"}, {"dry_run": True, "x": 1}])
async def test_sync_request_booleans_are_strict(
    api: httpx.AsyncClient, gitea: FakeGitea, body: dict[str, object]
) -> None:
    """{"fix_drift": 0} is a mistake to report, not a false to guess."""
    response = await api.post(
        "/api/v1/labels/sync", json=body, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert response.status_code == 422, response.text
    assert gitea.writes() == []


async def test_sync_body_that_is_not_utf8_is_a_documented_400(
    api: httpx.AsyncClient, gitea: FakeGitea
) -> None:
    response = await api.post(
        "/api/v1/labels/sync",
        content=b"\x8d7\xc2\x03",
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert gitea.writes() == []
    doc = (await api.get("/openapi.json")).json()
    assert "400" in doc["paths"]["/api/v1/labels/sync"]["post"]["responses"]


async def test_openapi_documents_the_admin_and_error_answers(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    paths = doc["paths"]
    sync = paths["/api/v1/labels/sync"]["post"]["responses"]
    assert {"200", "400", "401", "403", "422", "500", "503"} <= set(sync)
    refresh = paths["/api/v1/discovery/refresh"]["post"]
    assert {"401", "403"} <= set(refresh["responses"]) and refresh["security"]
    boot = paths["/api/v1/bootstrap-peers"]["get"]["responses"]
    assert {"200", "304", "401", "403", "422"} <= set(boot)
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert set(paths["/api/health"]["get"]["responses"]) >= {"200", "503"}
