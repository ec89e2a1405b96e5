"""``GET /api/v1/mesh`` of a real agent (its libp2p node on loopback, in process): a peer
that connects with a misspelt topic shows with its announced subscriptions, and the
agent's own pinger fills in the connection's round-trip time."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from chorus_agent.app import create_app
from chorus_agent.settings import Settings
from chorus_agent.wiring import build_agent
from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig
from meshcommon.peer.bootstrap_client import BootstrapResult
from meshcommon.topics import COORDINATION
from meshcommon.waiting import wait_until_async

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
TYPO = "chorus/coordination/v1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class NoBootstrap:
    async def fetch(self, wait_s: float = 0.0) -> BootstrapResult:
        return BootstrapResult((), "none", datetime.now(UTC))

    async def aclose(self) -> None:
        return None


async def test_mesh_view_names_a_peer_on_a_misspelt_topic(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(
        name="agent-t",
        p2p_host=HOST,
        p2p_port=port,
        allow_loopback=True,
        broadcast_interval_s=0.5,
        ping_interval_s=0.5,
        bootstrap_refresh_s=0.5,
    )
    agent = build_agent(settings, bootstrap=NoBootstrap())
    app = create_app(agent=agent)
    typo = MeshRuntime(MeshNode(NodeConfig(HOST, free_port(), topics=(TYPO,))))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as http,
    ):
        await typo.start()
        try:
            addr = f"/ip4/{HOST}/tcp/{port}/p2p/{agent.peer_id}"
            assert (await typo.connect(agent.peer_id, [addr])).connected

            async def view() -> dict:
                return (await http.get("/api/v1/mesh")).json()

            def complete(doc: dict) -> bool:
                conns = doc["connections"]
                return bool(doc["subscriptions"]) and bool(conns) and conns[0]["rtt_ms"] is not None

            doc, _ = await wait_until_async(
                view, complete, within_s=20, what="the typo peer's subscription and an RTT"
            )
        finally:
            await typo.stop()
    assert doc["peer_id"] == agent.peer_id
    assert doc["subscriptions"] == {typo.peer_id: [TYPO]}
    assert doc["topics"][TYPO] == {
        "subscribed": False,
        "mesh": [],
        "fanout": [],
        "subscribers": [typo.peer_id],
    }
    assert doc["topics"][COORDINATION]["subscribed"] is True
    (conn,) = doc["connections"]
    assert conn["peer_id"] == typo.peer_id and conn["direction"] == "inbound"
    assert conn["remote_addr"].startswith(f"/ip4/{HOST}/tcp/")
    assert conn["rtt_ms"] > 0 and conn["age_s"] >= 0


async def test_health_carries_a_signed_record_of_the_advertised_addresses() -> None:
    """What WHOOSH verifies: the record is of the agent's peer ID and signs exactly the
    addresses ``multiaddrs`` advertises (without /p2p/)."""
    import base64
    import time

    from meshcommon.peer_record import open_peer_record, transport_address

    settings = Settings(name="agent-r", p2p_host=HOST, p2p_port=free_port(), allow_loopback=True)
    agent = build_agent(settings, bootstrap=NoBootstrap())
    app = create_app(agent=agent)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as http,
    ):
        first = (await http.get("/api/health")).json()
        again = (await http.get("/api/health")).json()
    rec = open_peer_record(
        base64.b64decode(first["peer_record"]),
        expected_peer_id=agent.peer_id,
        now_ns=time.time_ns(),
    )
    assert first["multiaddrs"] and rec.peer_id == first["peer_id"]
    assert list(rec.addresses) == [transport_address(a) for a in first["multiaddrs"]]
    assert again["peer_record"] == first["peer_record"]  # unchanged addresses, same record
