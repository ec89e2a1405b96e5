"""Auto discovery's pair: the Swarm API first, DNS when it fails outright."""

from __future__ import annotations

from collections.abc import Callable

from whoosh.adapters.discovery.base import DiscoverySource, Watcher, watch
from whoosh.domain.targets import DiscoveryResult


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
