"""Choose the discovery source from settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlsplit

from whoosh.adapters.discovery.base import DiscoverySource, Watcher, watch
from whoosh.adapters.discovery.dns import DnsSource
from whoosh.adapters.discovery.static import StaticSource
from whoosh.adapters.discovery.swarm import DockerSwarmApi, SwarmTaskSource
from whoosh.adapters.discovery.swarm_events import docker_event_stream
from whoosh.domain.targets import DiscoveryResult
from whoosh.settings import Settings


def docker_available(docker_url: str) -> bool:
    """A unix socket must exist; tcp:// or ssh:// engines are assumed reachable."""
    parts = urlsplit(docker_url)
    if parts.scheme in ("unix", "http+unix", ""):
        return os.path.exists(parts.path or docker_url)
    return True


class FallbackSource:
    """Try ``primary``; when it fails outright, use ``fallback`` (auto mode only).

    A mounted Docker socket on a node that is not a Swarm manager (plain compose) makes the
    Swarm API fail; DNS still finds the agents there.
    """

    def __init__(self, primary: DiscoverySource, fallback: DiscoverySource) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = f"{primary.name}+{fallback.name}"

    def watch(self, on_change: Callable[[str], None]) -> Watcher | None:
        return watch(self.primary, on_change)

    async def discover(self) -> DiscoveryResult:
        first = await self.primary.discover()
        if first.targets or first.error is None:
            return first
        second = await self.fallback.discover()
        error = second.error and f"{first.error}; {second.error}"
        return DiscoveryResult(second.targets, second.expected, second.source, error)


def build_source(settings: Settings) -> DiscoverySource:
    dns = DnsSource(settings.dns_name or f"tasks.{settings.agent_service}", settings.agent_port)
    swarm = SwarmTaskSource(
        DockerSwarmApi(settings.docker_url),
        settings.agent_service,
        settings.swarm_network,
        settings.agent_port,
        events=docker_event_stream(settings.docker_url) if settings.swarm_events else None,
        gateway_service=settings.gateway_service,
    )
    match settings.discovery:
        case "static":
            return StaticSource(settings.static_agents)
        case "dns":
            return dns
        case "swarm":
            return swarm
    if settings.static_agents:
        return StaticSource(settings.static_agents)
    if docker_available(settings.docker_url):
        return FallbackSource(swarm, dns)
    return dns
