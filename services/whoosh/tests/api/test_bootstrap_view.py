"""``GET /api/v1/bootstrap-peers/view``: one agent's view, its entity tag, a long poll that
wakes only when that view changes, and 4xx on bad parameters."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from whoosh_testkit import make_settings

from meshcommon.models import BootstrapResponse
from meshcommon.peer_record import peer_id_of_private_key, seal_peer_record, transport_address
from whoosh.adapters.discovery.static import StaticSource
from whoosh.app import create_app
from whoosh.domain.peer_view import MAX_VIEW_K
from whoosh.wiring import build_whoosh

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-admin"
KEYS = [Ed25519PrivateKey.from_private_bytes(bytes([0x40 + n]) * 32) for n in range(8)]
IPS = [f"10.0.13.{20 + n}" for n in range(8)]
URLS = [f"http://{ip}:8080" for ip in IPS]
PEERS = {ip: peer_id_of_private_key(key) for ip, key in zip(IPS, KEYS, strict=True)}
RING = sorted(PEERS.values())


def _health(ip: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    pid = peer_id_of_private_key(key)
    addrs = [f"/ip4/{ip}/tcp/9000/p2p/{pid}"]
    record = seal_peer_record(key, [transport_address(a) for a in addrs], time.time_ns())
    return {
        "peer_id": pid,
        "name": f"agent-{ip.rsplit('.', 1)[1]}",
        "multiaddrs": addrs,
        "gossipsub_topics": [],
        "peer_record": base64.b64encode(record).decode(),
    }


class Fleet:
    """Eight healthy agents; ``down`` ones answer 500."""

    def __init__(self) -> None:
        self.bodies = {ip: _health(ip, key) for ip, key in zip(IPS, KEYS, strict=True)}
        self.down: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        ip = request.url.host
        if ip in self.down:
            return httpx.Response(500)
        return httpx.Response(200, json=self.bodies[ip])


@asynccontextmanager
async def running() -> AsyncIterator[tuple[httpx.AsyncClient, Fleet]]:
    fleet = Fleet()
    settings = make_settings(static_agents=URLS, health_attempts=1, admin_token=TOKEN)
    agent_http = httpx.AsyncClient(transport=httpx.MockTransport(fleet))
    whoosh = build_whoosh(settings, source=StaticSource(URLS), http_client=agent_http)
    app = create_app(whoosh=whoosh)
    async with app.router.lifespan_context(app):
        await whoosh.directory.refresh()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://whoosh") as api:
            yield api, fleet
    await agent_http.aclose()


def view_url(peer_id: str, k: int | None = None) -> str:
    return f"/api/v1/bootstrap-peers/view?peer_id={peer_id}" + (f"&k={k}" if k is not None else "")


async def refresh(api: httpx.AsyncClient) -> None:
    resp = await api.post("/api/v1/discovery/refresh", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200


async def test_a_view_is_the_ring_neighbours_and_k_peers_with_a_stable_tag() -> None:
    me = RING[3]
    async with running() as (api, _fleet):
        first = await api.get(view_url(me, 2))
        again = await api.get(view_url(me, 2))
        whole = await api.get("/api/v1/bootstrap-peers")
        same = await api.get(view_url(me, 2), headers={"If-None-Match": first.headers["etag"]})
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and again.headers["etag"] == etag
    assert same.status_code == 304 and same.headers["etag"] == etag and not same.content
    body = first.json()
    assert BootstrapResponse.model_validate(body).model_dump(mode="json", by_alias=True) == body
    assert body["view"] == {
        "peer_id": me,
        "k": 2,
        "successor": RING[4],
        "predecessor": RING[2],
        "total": 8,
    }
    ids = [p["peer_id"] for p in body["bootstrap_peers"]]
    assert ids[:2] == [RING[4], RING[2]] and len(ids) == len(set(ids)) == body["count"] == 4
    assert me not in ids
    assert [p["priority"] for p in body["bootstrap_peers"]] == [1, 2, 3, 4]
    assert body["summary"]["healthy"] == 8 and body["left"] == []
    # The whole list is unchanged: every peer, no view.
    assert whole.json()["count"] == 8 and whole.json()["view"] is None
    assert whole.headers["etag"] != etag


async def test_default_k_and_a_small_list() -> None:
    async with running() as (api, _fleet):
        body = (await api.get(view_url(RING[0]))).json()
    assert body["view"]["k"] == 8
    assert body["count"] == 7  # everyone but itself: the list is smaller than k + 2


@pytest.mark.parametrize(
    "query",
    [
        "",  # no peer_id
        "?peer_id=",
        "?peer_id=not-a-peer-id",
        "?peer_id=" + "1" * 129,
        f"?peer_id={RING[0]}&k=-1",
        f"?peer_id={RING[0]}&k={MAX_VIEW_K + 1}",
        f"?peer_id={RING[0]}&k=many",
    ],
)
async def test_bad_parameters_are_a_422(query: str) -> None:
    async with running() as (api, _fleet):
        resp = await api.get("/api/v1/bootstrap-peers/view" + query)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"][0] == "query"


async def test_the_long_poll_wakes_only_when_this_view_changes() -> None:
    """With k = 0 a view is the ring neighbours: an agent far from them going away changes
    the list (the whole list's waiter answers) but not this view (its waiter keeps waiting);
    the successor going away answers at once, with the next one on the ring."""
    me = RING[0]
    far = next(ip for ip, pid in PEERS.items() if pid == RING[4])
    successor_ip = next(ip for ip, pid in PEERS.items() if pid == RING[1])
    async with running() as (api, fleet):
        view = await api.get(view_url(me, 0))
        whole = await api.get("/api/v1/bootstrap-peers")
        wait = {"Prefer": "wait=20"}
        view_waiter = asyncio.create_task(
            api.get(view_url(me, 0), headers={"If-None-Match": view.headers["etag"], **wait})
        )
        whole_waiter = asyncio.create_task(
            api.get(
                "/api/v1/bootstrap-peers", headers={"If-None-Match": whole.headers["etag"], **wait}
            )
        )
        await asyncio.sleep(0.05)

        fleet.down.add(far)
        await refresh(api)
        changed = await asyncio.wait_for(whole_waiter, 5)
        assert changed.status_code == 200 and changed.json()["count"] == 7
        await asyncio.sleep(0.1)
        assert not view_waiter.done(), "a change elsewhere woke this view's waiter"

        fleet.down.add(successor_ip)
        await refresh(api)
        answered = await asyncio.wait_for(view_waiter, 5)
    assert answered.status_code == 200 and answered.headers["etag"] != view.headers["etag"]
    body = answered.json()
    assert body["view"]["successor"] == RING[2]
    assert [p["peer_id"] for p in body["bootstrap_peers"]] == [RING[2], RING[7]]


async def test_the_long_poll_times_out_with_a_304() -> None:
    async with running() as (api, _fleet):
        view = await api.get(view_url(RING[5], 1))
        started = time.monotonic()
        resp = await api.get(
            view_url(RING[5], 1),
            headers={"If-None-Match": view.headers["etag"], "Prefer": "wait=0.3"},
        )
    assert resp.status_code == 304 and time.monotonic() - started >= 0.25
