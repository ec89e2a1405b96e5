"""Auto discovery's pair: DNS when the Swarm API fails."""

from __future__ import annotations

from typing import Any

import pytest

from whoosh.adapters.discovery.dns import DnsSource
from whoosh.adapters.discovery.fallback import FallbackSource
from whoosh.adapters.discovery.swarm import SwarmTaskSource

pytestmark = pytest.mark.anyio


class NoServices:
    """An Engine API without the agent service: Swarm discovery fails outright."""

    def services(self) -> list[dict[str, Any]]:
        return []

    def tasks(self, service_id: str) -> list[dict[str, Any]]:
        return []

    def nodes(self) -> list[dict[str, Any]]:
        return []


async def test_fallback_to_dns_when_swarm_fails() -> None:
    async def resolver(name: str) -> list[str]:
        return ["10.0.13.2"]

    swarm = SwarmTaskSource(NoServices(), "chorus", "chorus_net", 8080)
    result = await FallbackSource(swarm, DnsSource("tasks.chorus", 8080, resolver)).discover()
    assert [t.url for t in result.targets] == ["http://10.0.13.2:8080"]
    assert result.source == "dns" and result.error is None
