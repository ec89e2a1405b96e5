from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hmmm_monitor.app import create_app
from hmmm_monitor.settings import Settings
from hmmm_monitor.wiring import build_monitor
from meshcommon.models import BootstrapPeer
from meshcommon.peer.bootstrap_client import BootstrapResult


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_ports(n: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (sockets held open until all are picked)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class StubBootstrap:
    """A bootstrap source returning a fixed list (stands in for WHOOSH)."""

    def __init__(self, peers: list[BootstrapPeer], source: str = "whoosh") -> None:
        self.peers = peers
        self.source = source
        self.fetches = 0
        self.closed = False

    async def fetch(self, wait_s: float = 0.0) -> BootstrapResult:
        self.fetches += 1
        return BootstrapResult(tuple(self.peers), self.source, datetime.now(UTC))  # type: ignore[arg-type]

    async def aclose(self) -> None:
        self.closed = True


def peer(peer_id: str, *addrs: str, name: str = "", priority: int = 1) -> BootstrapPeer:
    return BootstrapPeer(
        peer_id=peer_id,
        name=name or f"agent-{peer_id[-4:]}",
        priority=priority,
        multiaddr=addrs[0] if addrs else "",
        multiaddrs=list(addrs),
    )


def addr(port: int, peer_id: str) -> str:
    return f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}"


@contextlib.asynccontextmanager
async def running_monitor(
    tmp_path: Path, p2p_port: int, bootstrap: Any, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The monitor app with a real libp2p node on loopback, its lifespan running, and an
    HTTP client talking to it in process."""
    settings = Settings(
        p2p_host="127.0.0.1",
        p2p_port=p2p_port,
        allow_loopback=True,
        whoosh_url="",
        bootstrap_refresh_s=0.3,
        bootstrap_cache_path=str(tmp_path / "bootstrap.json"),
        log_messages_to_stdout=False,
        **overrides,
    )
    app = create_app(monitor=build_monitor(settings, bootstrap=bootstrap))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://monitor"
        ) as http,
    ):
        yield app, http
