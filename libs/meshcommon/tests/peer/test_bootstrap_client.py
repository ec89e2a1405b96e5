from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from meshcommon.limits import MAX_LEFT_PEERS
from meshcommon.peer.bootstrap_client import WhooshBootstrapClient

WHOOSH = "http://whoosh.test:8080"
URL = f"{WHOOSH}/api/v1/bootstrap-peers"
PID = "12D3KooWLdRq9rGCYQMB7mpbAQuC2ZB1QxqC9LHXAmJ9FCJdwSKE"
ADDR = f"/ip4/10.0.13.5/tcp/9000/p2p/{PID}"
BODY = {
    "bootstrap_peers": [
        {"peer_id": PID, "name": "chorus-1", "priority": 1, "multiaddr": ADDR, "multiaddrs": [ADDR]}
    ],
    "count": 1,
}

AT = "2025-01-01T00:00:00+00:00"

pytestmark = pytest.mark.anyio


def client(tmp_path, **kw) -> WhooshBootstrapClient:
    kw.setdefault("cache_path", tmp_path / "cache" / "bootstrap.json")
    kw.setdefault("attempts", 3)
    return WhooshBootstrapClient(WHOOSH, backoff_initial_s=0.001, backoff_max_s=0.002, **kw)


class Outcomes(list[str]):
    """Collects what the client reports through ``on_result`` (what metrics count)."""

    def count(self, result: str) -> int:  # type: ignore[override]
        return sum(1 for r in self if r == result)


@respx.mock
async def test_500_then_200_is_retried_and_cached(tmp_path) -> None:
    route = respx.get(URL).mock(side_effect=[httpx.Response(500), httpx.Response(200, json=BODY)])
    outcomes = Outcomes()
    c = client(tmp_path, on_result=outcomes.append)
    result = await c.fetch()
    await c.aclose()
    assert route.call_count == 2
    assert result.source == "whoosh" and [p.peer_id for p in result.peers] == [PID]
    cached = json.loads((tmp_path / "cache" / "bootstrap.json").read_text())
    assert cached["response"]["bootstrap_peers"][0]["peer_id"] == PID
    assert outcomes == ["ok"]  # one fetch, whatever it took inside
    assert not list((tmp_path / "cache").glob(".bootstrap-*"))  # temp file renamed away


@respx.mock
async def test_whoosh_down_uses_cache_with_its_age(tmp_path, caplog) -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, json=BODY))
    outcomes = Outcomes()
    c = client(tmp_path, on_result=outcomes.append)
    assert (await c.fetch()).source == "whoosh"
    respx.get(URL).mock(side_effect=httpx.ConnectError("connection refused"))
    with caplog.at_level(logging.WARNING):
        result = await c.fetch()
        again = await c.fetch()
    await c.aclose()
    assert result.source == "cache"
    assert [p.peer_id for p in result.peers] == [PID]
    assert result.age_s() is not None and result.age_s() < 60
    assert "unreachable" in (result.error or "")
    assert again.source == "cache"
    assert outcomes == ["ok", "unreachable", "unreachable"]
    lines = [r.getMessage() for r in caplog.records if "WHOOSH unusable" in r.getMessage()]
    assert len(lines) == 1, lines  # one line per kind of failure, not one per fetch
    assert "connection refused" in lines[0] and "using cache list" in lines[0]
    assert result.info()["source"] == "cache"


@respx.mock
async def test_cache_survives_a_restart_and_reports_old_age(tmp_path) -> None:
    path = tmp_path / "bootstrap.json"
    old = datetime.now(UTC) - timedelta(minutes=5)
    path.write_text(json.dumps({"fetched_at": old.isoformat(), "response": BODY}))
    respx.get(URL).mock(return_value=httpx.Response(503))
    c = client(tmp_path, cache_path=path)
    result = await c.fetch()
    await c.aclose()
    assert result.source == "cache" and 290 < (result.age_s() or 0) < 400


@respx.mock
async def test_malformed_response_is_a_clear_error_and_the_cache_is_used(tmp_path, caplog) -> None:
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps({"fetched_at": datetime.now(UTC).isoformat(), "response": BODY}))
    route = respx.get(URL).mock(return_value=httpx.Response(200, json={"peers": "nope"}))
    outcomes = Outcomes()
    c = client(tmp_path, cache_path=path, on_result=outcomes.append)
    with caplog.at_level(logging.WARNING):
        result = await c.fetch()
    await c.aclose()
    assert route.call_count == 1  # not retried: a malformed answer won't fix itself
    assert result.source == "cache"
    assert "invalid_response" in (result.error or "") and "bootstrap_peers" in (result.error or "")
    assert outcomes == ["invalid_response"]
    assert any("malformed bootstrap response" in r.getMessage() for r in caplog.records)


@respx.mock
async def test_no_cache_falls_back_to_static_then_none(tmp_path) -> None:
    respx.get(URL).mock(side_effect=httpx.ConnectError("down"))
    static = [ADDR, "/ip4/10.0.13.6/tcp/9000"]  # the second lacks /p2p/: skipped with a reason
    c = client(tmp_path, static=static)
    result = await c.fetch()
    assert result.source == "static" and [p.peer_id for p in result.peers] == [PID]
    assert [r.reason for r in result.rejected] == ["missing_peer_id"]
    bare = client(tmp_path / "other")
    assert (await bare.fetch()).source == "none"
    await c.aclose()
    await bare.aclose()


async def test_no_whoosh_url_means_static_only(tmp_path) -> None:
    c = WhooshBootstrapClient("", static=[ADDR])
    result = await c.fetch()
    await c.aclose()
    assert result.source == "static" and result.peers[0].multiaddrs == [ADDR]


@respx.mock
async def test_whoosh_back_after_an_outage_is_used_and_logged_once(tmp_path, caplog) -> None:
    respx.get(URL).mock(side_effect=[httpx.ConnectError("down"), httpx.Response(200, json=BODY)])
    c = client(tmp_path, attempts=1)
    with caplog.at_level(logging.INFO):
        assert (await c.fetch()).source == "none"
        assert (await c.fetch()).source == "whoosh"
    await c.aclose()
    assert any("WHOOSH answers again" in r.getMessage() for r in caplog.records)


@respx.mock
async def test_a_fetch_with_a_wait_long_polls_with_the_lists_entity_tag(tmp_path) -> None:
    """The tag of the list we have goes back in If-None-Match with Prefer: wait=N; a 304
    confirms our copy (still reported as WHOOSH's, fresh); a 200 brings the new list."""
    seen: list[httpx.Request] = []
    answers = [
        httpx.Response(200, json=BODY, headers={"ETag": '"v1"'}),
        httpx.Response(304, headers={"ETag": '"v1"'}),
        httpx.Response(200, json={**BODY, "count": 1}, headers={"ETag": '"v2"'}),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    respx.get(URL).mock(side_effect=answer)
    c = client(tmp_path)
    first = await c.fetch(wait_s=10)  # nothing to compare yet: asks plainly
    confirmed = await c.fetch(wait_s=10)
    changed = await c.fetch(wait_s=10)
    await c.aclose()
    assert "if-none-match" not in seen[0].headers
    assert seen[1].headers["if-none-match"] == '"v1"' and seen[1].headers["prefer"] == "wait=10"
    assert seen[2].headers["if-none-match"] == '"v1"'
    assert confirmed.source == "whoosh" and confirmed.peers == first.peers
    assert confirmed.fetched_at and first.fetched_at and confirmed.fetched_at >= first.fetched_at
    assert changed.source == "whoosh" and [p.peer_id for p in changed.peers] == [PID]


@respx.mock
async def test_a_huge_list_is_refused_and_entries_are_kept_within_budget(tmp_path) -> None:
    from meshcommon.limits import MAX_BOOTSTRAP_BYTES, MAX_MULTIADDRS_PER_PEER

    many = [f"/ip4/10.0.13.5/tcp/{9000 + i}/p2p/{PID}" for i in range(500)]
    entry = {"peer_id": PID, "name": "x", "priority": 1, "multiaddr": many[0], "multiaddrs": many}
    respx.get(URL).mock(
        return_value=httpx.Response(200, json={"bootstrap_peers": [entry], "count": 1})
    )
    c = client(tmp_path)
    trimmed = await c.fetch()
    assert len(trimmed.peers[0].multiaddrs) == MAX_MULTIADDRS_PER_PEER
    respx.get(URL).mock(return_value=httpx.Response(200, content=b" " * (MAX_BOOTSTRAP_BYTES + 1)))
    refused = await c.fetch()
    await c.aclose()
    assert refused.source == "cache" and "larger than" in (refused.error or "")


@respx.mock
async def test_peers_that_left_come_with_the_list_and_its_cache(tmp_path) -> None:
    gone = {"peer_id": "12D3KooWgone", "name": "chorus-9", "reason": "scaled_down", "at": AT}
    many = [{**gone, "peer_id": f"12D3KooW{i}"} for i in range(MAX_LEFT_PEERS + 5)]
    respx.get(URL).mock(
        side_effect=[
            httpx.Response(200, json={**BODY, "left": [gone]}),
            httpx.ConnectError("down"),
            httpx.Response(200, json={**BODY, "left": many}),
        ]
    )
    c = client(tmp_path, attempts=1)
    fresh = await c.fetch()
    assert [(p.peer_id, p.reason) for p in fresh.left] == [("12D3KooWgone", "scaled_down")]
    cached = await c.fetch()  # WHOOSH down: the cached list still says who left
    assert cached.source == "cache" and cached.left == fresh.left
    capped = await c.fetch()
    await c.aclose()
    assert len(capped.left) == MAX_LEFT_PEERS  # a peer's claim stays within its budget


@respx.mock
async def test_a_list_without_left_is_read_as_nobody_left(tmp_path) -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, json=BODY))  # an older WHOOSH
    c = client(tmp_path)
    assert (await c.fetch()).left == ()
    await c.aclose()


@respx.mock
async def test_claimants_of_a_conflicted_entry_are_kept_apart_and_within_budget(tmp_path) -> None:
    from meshcommon.limits import MAX_CLAIMANTS_PER_PEER, MAX_MULTIADDRS_PER_PEER

    claimants = [
        {"name": f"host-{i}", "url": f"http://10.0.13.{i}:8080", "multiaddrs": [ADDR] * 40}
        for i in range(MAX_CLAIMANTS_PER_PEER + 3)
    ]
    entry = {**BODY["bootstrap_peers"][0], "conflict": True, "claimants": claimants}
    respx.get(URL).mock(
        return_value=httpx.Response(200, json={"bootstrap_peers": [entry], "count": 1})
    )
    c = client(tmp_path)
    got = (await c.fetch()).peers[0]
    await c.aclose()
    assert got.conflict and len(got.claimants) == MAX_CLAIMANTS_PER_PEER
    assert [c.name for c in got.claimants[:2]] == ["host-0", "host-1"]
    assert all(len(c.multiaddrs) == MAX_MULTIADDRS_PER_PEER for c in got.claimants)


@respx.mock
async def test_only_the_first_attempt_of_a_fetch_waits_for_news(tmp_path) -> None:
    """After a failed long poll the retries ask plainly: is WHOOSH there at all? A fetch
    then stays within its budget instead of waiting N seconds per attempt."""
    seen: list[httpx.Request] = []
    answers = [
        httpx.Response(200, json=BODY, headers={"ETag": '"v1"'}),
        httpx.Response(503),
        httpx.Response(304, headers={"ETag": '"v1"'}),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    respx.get(URL).mock(side_effect=answer)
    c = client(tmp_path)
    await c.fetch()
    again = await c.fetch(wait_s=10)
    await c.aclose()
    assert seen[1].headers["prefer"] == "wait=10"
    assert "prefer" not in seen[2].headers and seen[2].headers["if-none-match"] == '"v1"'
    assert again.source == "whoosh"


VIEW_URL = f"{WHOOSH}/api/v1/bootstrap-peers/view"
ME = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
VIEW_BODY = {
    **BODY,
    "view": {"peer_id": ME, "k": 4, "successor": PID, "predecessor": PID, "total": 1000},
}


@respx.mock
async def test_an_agent_long_polls_its_own_view(tmp_path) -> None:
    """With a peer ID and k, the view is asked for (never the whole list), its tag goes
    back with the wait, and the result names the ring successor; the view is cached."""
    seen: list[httpx.Request] = []
    answers = [
        httpx.Response(200, json=VIEW_BODY, headers={"ETag": 'W/"v1"'}),
        httpx.Response(304, headers={"ETag": 'W/"v1"'}),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    view = respx.get(VIEW_URL).mock(side_effect=answer)
    whole = respx.get(URL).mock(return_value=httpx.Response(200, json=BODY))
    c = client(tmp_path, view_peer_id=ME, view_k=4)
    first = await c.fetch(wait_s=10)
    confirmed = await c.fetch(wait_s=10)
    await c.aclose()
    assert view.call_count == 2 and whole.call_count == 0
    assert dict(seen[0].url.params) == {"peer_id": ME, "k": "4"}
    assert seen[1].headers["if-none-match"] == 'W/"v1"' and seen[1].headers["prefer"] == "wait=10"
    assert first.view is not None and first.view.successor == PID
    assert confirmed.view == first.view and confirmed.peers == first.peers
    cached = json.loads((tmp_path / "cache" / "bootstrap.json").read_text())
    assert cached["response"]["view"]["peer_id"] == ME


@pytest.mark.parametrize("status", [404, 422])
@respx.mock
async def test_a_whoosh_without_the_view_gives_the_whole_list(tmp_path, caplog, status) -> None:
    """An older WHOOSH (404) or one that refuses the parameters: the same fetch falls back
    to the whole list at once, logged once, and the view is asked for again later."""
    now = [0.0]
    view = respx.get(VIEW_URL).mock(return_value=httpx.Response(status))
    whole = respx.get(URL).mock(
        return_value=httpx.Response(200, json=BODY, headers={"ETag": '"w1"'})
    )
    outcomes = Outcomes()
    c = client(tmp_path, view_peer_id=ME, view_k=4, on_result=outcomes.append, clock=lambda: now[0])
    with caplog.at_level(logging.INFO):
        first = await c.fetch(wait_s=10)
        second = await c.fetch(wait_s=10)
    assert first.source == second.source == "whoosh" and first.view is None
    assert [p.peer_id for p in first.peers] == [PID]
    assert view.call_count == 1 and whole.call_count == 2  # not asked again at once
    assert whole.calls[1].request.headers["if-none-match"] == '"w1"'  # long polls the list
    assert outcomes == ["ok", "ok"]
    assert sum("no per-agent view" in r.getMessage() for r in caplog.records) == 1
    now[0] += 301  # later: asked again (WHOOSH may have been upgraded)
    view.mock(return_value=httpx.Response(200, json=VIEW_BODY, headers={"ETag": 'W/"v1"'}))
    upgraded = await c.fetch(wait_s=10)
    await c.aclose()
    assert upgraded.view is not None and view.call_count == 2
    assert "if-none-match" not in view.calls[1].request.headers  # the list's tag is not the view's


@respx.mock
async def test_the_monitor_and_k_0_ask_for_the_whole_list(tmp_path) -> None:
    view = respx.get(VIEW_URL).mock(return_value=httpx.Response(200, json=VIEW_BODY))
    whole = respx.get(URL).mock(return_value=httpx.Response(200, json=BODY))
    for kw in ({}, {"view_peer_id": ME, "view_k": 0}):
        c = client(tmp_path, **kw)
        assert (await c.fetch()).view is None
        await c.aclose()
    assert view.call_count == 0 and whole.call_count == 2


def _ca_count(c: WhooshBootstrapClient) -> int:
    ctx = c._client._transport._pool._ssl_context  # httpx -> httpcore: the one context
    return int(ctx.cert_store_stats()["x509_ca"])


def test_a_plain_http_whoosh_loads_no_ca_certificates_and_https_verifies(tmp_path) -> None:
    """certifi's CA bundle in OpenSSL costs ~1 MiB per process: only an https WHOOSH pays
    it; over http the context holds no CA, so TLS (never made) could not pass unverified."""
    import ssl

    plain = WhooshBootstrapClient("http://whoosh:8080", cache_path=str(tmp_path / "a"))
    secure = WhooshBootstrapClient("HTTPS://whoosh:8443", cache_path=str(tmp_path / "b"))
    assert _ca_count(plain) == 0
    assert _ca_count(secure) > 50
    ctx = plain._client._transport._pool._ssl_context
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
