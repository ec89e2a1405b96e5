"""The discovery port: what every source returns, and the interface it implements."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class AgentTarget:
    """One agent's HTTP endpoint as found by discovery (not yet known to be healthy)."""

    url: str  # base URL, e.g. http://10.0.13.5:8080 (no trailing slash)
    name: str  # what discovery calls it (Swarm task name, IP, URL host)
    address: str  # host/IP part of url: two targets on different IPs are different hosts


@dataclass(frozen=True)
class DiscoveryResult:
    targets: tuple[AgentTarget, ...]
    # How many agents the source says should exist (Swarm replicas, static list size);
    # None when the source cannot know (DNS). The gap to "healthy" is reported, not hidden.
    expected: int | None
    source: str
    error: str | None = None


@runtime_checkable
class DiscoverySource(Protocol):
    name: str

    async def discover(self) -> DiscoveryResult: ...


def http_url(ip: str, port: int) -> str:
    """``http://10.0.13.5:8080`` or ``http://[fd00::5]:8080``."""
    try:
        is_v6 = ipaddress.ip_address(ip).version == 6
    except ValueError:
        is_v6 = False
    return f"http://[{ip}]:{port}" if is_v6 else f"http://{ip}:{port}"
