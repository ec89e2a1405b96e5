"""DNS discovery, with a fake resolver (and once the real one on localhost)."""

from __future__ import annotations

import socket

import pytest

from whoosh.adapters.discovery.dns import DnsSource

pytestmark = pytest.mark.anyio


async def test_dns_every_record_becomes_a_target() -> None:
    asked: list[str] = []

    async def resolver(name: str) -> list[str]:
        asked.append(name)
        # getaddrinfo repeats addresses per socket type; they must not double up
        return [f"10.0.13.{i}" for i in range(2, 12)] + ["10.0.13.2", "fd00::5"]

    result = await DnsSource("tasks.chorus", 8080, resolver).discover()
    assert asked == ["tasks.chorus"]
    assert len(result.targets) == 11
    assert result.targets[0].url == "http://10.0.13.2:8080"
    assert result.targets[-1].url == "http://[fd00::5]:8080"
    assert result.expected is None and result.error is None


async def test_dns_ten_records_ten_targets() -> None:
    async def resolver(name: str) -> list[str]:
        return [f"10.0.13.{i}" for i in range(10, 20)]

    result = await DnsSource("tasks.chorus", 8080, resolver).discover()
    assert len(result.targets) == 10


async def test_dns_nxdomain_is_an_error_not_an_exception() -> None:
    async def resolver(name: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = await DnsSource("tasks.nope", 8080, resolver).discover()
    assert result.targets == ()
    assert result.error is not None and "tasks.nope" in result.error


async def test_dns_default_resolver_on_localhost() -> None:
    result = await DnsSource("localhost", 8080).discover()
    assert result.error is None
    assert any(t.address in ("127.0.0.1", "::1") for t in result.targets)
