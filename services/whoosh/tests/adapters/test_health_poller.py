"""HealthPoller against respx-mocked agents: retries, timeouts, what each answer becomes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from whoosh_testkit import PEER_A, PEER_B, health_body, make_poller, make_settings, signed_record

from whoosh.domain.targets import AgentTarget
from whoosh.metrics import WhooshMetrics

pytestmark = pytest.mark.anyio
LOGGER = "whoosh.adapters.health_poller"


def target(ip: str, port: int = 8080) -> AgentTarget:
    return AgentTarget(url=f"http://{ip}:{port}", name=ip, address=ip)


def sample(metrics: WhooshMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    return value or 0.0


@pytest.fixture
async def client():
    async with httpx.AsyncClient(trust_env=False) as c:
        yield c


async def test_healthy_agent(client: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.get("http://10.0.13.5:8080/api/health").respond(
            json=health_body(PEER_A, "10.0.13.5", name="alpha")
        )
        metrics = WhooshMetrics()
        [status] = await make_poller(make_settings(), client, metrics).poll([target("10.0.13.5")])
    assert status.state == "healthy"
    assert status.reason is None
    assert status.peer_id == PEER_A
    assert status.multiaddrs == [f"/ip4/10.0.13.5/tcp/9000/p2p/{PEER_A}"]
    assert status.attempts == 1
    assert status.last_seen is not None
    assert status.latency_ms is not None
    assert sample(metrics, "whoosh_health_checks_total", result="healthy") == 1


async def test_malformed_json_not_retried(client: httpx.AsyncClient, caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with respx.mock() as mock:
        route = mock.get("http://10.0.13.6:8080/api/health").respond(200, text="<html>")
        [status] = await make_poller(make_settings(), client).poll([target("10.0.13.6")])
    assert (status.state, status.reason, status.attempts) == ("unreachable", "malformed_json", 1)
    assert route.call_count == 1
    assert "Expecting value" in (status.detail or "")
    lines = [r.getMessage() for r in caplog.records if "10.0.13.6" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("agent http://10.0.13.6:8080 unreachable: malformed_json (")
    assert lines[0].endswith("after 1 attempt")


async def test_invalid_schema(client: httpx.AsyncClient) -> None:
    with respx.mock() as mock:
        mock.get("http://10.0.13.6:8080/api/health").respond(json={"multiaddrs": "nope"})
        [status] = await make_poller(make_settings(), client).poll([target("10.0.13.6")])
    assert (status.state, status.reason) == ("unreachable", "invalid_health")
    assert "peer_id" in (status.detail or "")


async def test_http_500_retried_then_unreachable(client: httpx.AsyncClient) -> None:
    metrics = WhooshMetrics()
    with respx.mock() as mock:
        route = mock.get("http://10.0.13.7:8080/api/health").respond(500)
        [status] = await make_poller(make_settings(), client, metrics).poll([target("10.0.13.7")])
    assert (status.state, status.reason, status.attempts) == ("unreachable", "http_500", 3)
    assert route.call_count == 3
    assert sample(metrics, "whoosh_health_check_retries_total") == 2
    assert sample(metrics, "whoosh_health_checks_total", result="http_500") == 1


async def test_http_404_not_retried(client: httpx.AsyncClient) -> None:
    with respx.mock() as mock:
        route = mock.get("http://10.0.13.7:8080/api/health").respond(404)
        [status] = await make_poller(make_settings(), client).poll([target("10.0.13.7")])
    assert (status.reason, route.call_count) == ("http_404", 1)


async def test_500_twice_then_healthy(client: httpx.AsyncClient) -> None:
    with respx.mock() as mock:
        mock.get("http://10.0.13.8:8080/api/health").side_effect = [
            httpx.Response(500),
            httpx.Response(503),
            httpx.Response(200, json=health_body(PEER_A, "10.0.13.8")),
        ]
        [status] = await make_poller(make_settings(), client).poll([target("10.0.13.8")])
    assert (status.state, status.attempts) == ("healthy", 3)


async def test_hanging_agent_times_out_others_healthy(client: httpx.AsyncClient) -> None:
    with respx.mock() as mock:
        mock.get("http://10.0.13.1:8080/api/health").respond(json=health_body(PEER_A, "10.0.13.1"))
        mock.get("http://10.0.13.2:8080/api/health").mock(
            side_effect=httpx.ReadTimeout("timed out")
        )
        mock.get("http://10.0.13.3:8080/api/health").respond(json=health_body(PEER_B, "10.0.13.3"))
        mock.get("http://10.0.13.4:8080/api/health").mock(
            side_effect=httpx.ConnectError("connection refused")
        )
        statuses = await make_poller(make_settings(), client).poll(
            [target(f"10.0.13.{i}") for i in (1, 2, 3, 4)]
        )
    by_ip = {s.target.address: s for s in statuses}
    assert by_ip["10.0.13.1"].state == by_ip["10.0.13.3"].state == "healthy"
    assert (by_ip["10.0.13.2"].reason, by_ip["10.0.13.2"].attempts) == ("timeout", 3)
    assert by_ip["10.0.13.4"].reason == "connect_error"


async def test_real_timeout_against_silent_server(client: httpx.AsyncClient) -> None:
    """A server that accepts and never answers: the per-request timeout must fire."""
    import asyncio

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = make_settings(health_timeout_s=0.2, health_attempts=2)
        [status] = await make_poller(settings, client).poll([target("127.0.0.1", port)])
    finally:
        server.close()
    assert (status.state, status.reason, status.attempts) == ("unreachable", "timeout", 2)


async def test_only_signed_addresses_are_listed(client: httpx.AsyncClient) -> None:
    body = health_body(PEER_A, "10.0.13.9", "10.0.13.10")
    body["peer_record"] = signed_record(
        PEER_A, ["/ip4/10.0.13.9/tcp/9000", "/ip4/127.0.0.1/tcp/9000"]
    )
    metrics = WhooshMetrics()
    with respx.mock() as mock:
        mock.get("http://10.0.13.9:8080/api/health").respond(json=body)
        [status] = await make_poller(make_settings(), client, metrics).poll([target("10.0.13.9")])
    assert (status.state, status.signed) == ("healthy", True)
    assert status.multiaddrs == [f"/ip4/10.0.13.9/tcp/9000/p2p/{PEER_A}"]
    reasons = {r.multiaddr: r.reason for r in status.rejected}
    assert reasons == {
        f"/ip4/10.0.13.10/tcp/9000/p2p/{PEER_A}": "not_in_signed_record",
        f"/ip4/127.0.0.1/tcp/9000/p2p/{PEER_A}": "loopback",  # signed, and still the policy
    }
    assert sample(metrics, "whoosh_peer_record_verifications_total") == 1


async def test_bad_multiaddrs_rejected_rest_kept(client: httpx.AsyncClient) -> None:
    """Unsigned answers (WHOOSH_UNSIGNED_HEALTH=accept): the policy still applies."""
    body = health_body(PEER_A, "10.0.13.9", signed=False)
    body["multiaddrs"] += [
        "not-a-multiaddr",
        f"/ip4/10.0.13.9/tcp/9000/p2p/{PEER_B}",  # someone else's peer id (Swarm VIP)
        f"/ip4/127.0.0.1/tcp/9000/p2p/{PEER_A}",
        "/ip4/192.168.1.20/tcp/9000",  # routable, no /p2p/: normalised and kept, ranked last
    ]
    metrics = WhooshMetrics()
    with respx.mock() as mock:
        mock.get("http://10.0.13.9:8080/api/health").respond(json=body)
        settings = make_settings(unsigned_health="accept")
        [status] = await make_poller(settings, client, metrics).poll([target("10.0.13.9")])
    assert (status.state, status.signed) == ("healthy", False)
    assert status.multiaddrs == [
        f"/ip4/10.0.13.9/tcp/9000/p2p/{PEER_A}",
        f"/ip4/192.168.1.20/tcp/9000/p2p/{PEER_A}",
    ]
    reasons = {r.multiaddr: r.reason for r in status.rejected}
    assert reasons == {
        "not-a-multiaddr": "invalid_multiaddr",
        f"/ip4/10.0.13.9/tcp/9000/p2p/{PEER_B}": "peer_id_mismatch",
        f"/ip4/127.0.0.1/tcp/9000/p2p/{PEER_A}": "loopback",
    }
    assert sample(metrics, "whoosh_multiaddrs_rejected_total", reason="loopback") == 1


@pytest.mark.parametrize("allow", [False, True])
async def test_loopback_only_when_allowed(client: httpx.AsyncClient, allow: bool) -> None:
    with respx.mock() as mock:
        mock.get("http://127.0.1.3:8080/api/health").respond(json=health_body(PEER_A, "127.0.1.3"))
        settings = make_settings(allow_loopback=allow)
        [status] = await make_poller(settings, client).poll([target("127.0.1.3")])
    if allow:
        assert status.state == "healthy"
        assert status.multiaddrs == [f"/ip4/127.0.1.3/tcp/9000/p2p/{PEER_A}"]
    else:
        assert (status.state, status.reason) == ("unreachable", "no_routable_multiaddrs")
        assert [r.reason for r in status.rejected] == ["loopback"]


async def test_one_log_line_per_state_change(client: httpx.AsyncClient, caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    poller = make_poller(make_settings(health_attempts=1), client)
    url = "http://10.0.13.5:8080/api/health"
    with respx.mock() as mock:
        route = mock.get(url).respond(500)
        for _ in range(3):
            await poller.poll([target("10.0.13.5")])
        route.respond(json=health_body(PEER_A, "10.0.13.5"))
        for _ in range(3):
            [status] = await poller.poll([target("10.0.13.5")])
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("agent http://10.0.13.5:8080 unreachable: http_500 (")
    assert messages[1].startswith(f"agent http://10.0.13.5:8080 healthy: peer {PEER_A} (")
    assert status.last_seen is not None


# -- budgets: what an agent controls (size, count, time) cannot cost WHOOSH more -------
async def test_a_huge_health_body_is_refused_unread(client: httpx.AsyncClient) -> None:
    streamed = {"chunks": 0}

    async def endless() -> AsyncIterator[bytes]:  # no Content-Length: chunked, never ends
        while True:
            streamed["chunks"] += 1
            yield b" " * 16384

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "10.0.13.7":  # declares its size
            return httpx.Response(200, content=b" " * 20_000_000)
        return httpx.Response(200, content=endless())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as huge:
        statuses = await make_poller(make_settings(max_health_bytes=65536), huge).poll(
            [target("10.0.13.7"), target("10.0.13.8")]
        )
    assert [(s.state, s.reason) for s in statuses] == [("unreachable", "oversized_health")] * 2
    assert all(s.attempts == 1 for s in statuses)  # the same answer again: not retried
    assert streamed["chunks"] <= 6  # stopped just past the limit


async def test_an_agent_claiming_thousands_of_multiaddrs_is_refused(
    client: httpx.AsyncClient,
) -> None:
    addrs = [f"/ip4/10.0.13.9/tcp/{9000 + i}/p2p/{PEER_B}" for i in range(5000)]
    body = {**health_body(PEER_B, "10.0.13.9"), "multiaddrs": addrs}
    with respx.mock() as mock:
        mock.get("http://10.0.13.9:8080/api/health").respond(json=body)
        settings = make_settings(max_health_bytes=1_000_000, max_multiaddrs=32)
        metrics = WhooshMetrics()
        [status] = await make_poller(settings, client, metrics).poll([target("10.0.13.9")])
    assert (status.state, status.reason) == ("unreachable", "too_many_multiaddrs")
    assert "5000 multiaddrs reported, at most 32" in (status.detail or "")
    assert status.multiaddrs == [] and status.rejected == ()  # none were even looked at
    assert sample(metrics, "whoosh_health_checks_total", result="too_many_multiaddrs") == 1


async def test_a_trickling_agent_is_cut_off_at_the_deadline() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(100):  # 1 byte every 50 ms: each read "in time", the whole not
            await asyncio.sleep(0.05)
            yield b" "

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=trickle())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as slow:
        started = time.monotonic()
        settings = make_settings(health_timeout_s=0.3, health_attempts=1)
        [status] = await make_poller(settings, slow).poll([target("10.0.13.10")])
    assert (status.state, status.reason) == ("unreachable", "timeout")
    assert time.monotonic() - started < 2.0
