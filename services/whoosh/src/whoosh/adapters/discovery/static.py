"""A fixed list of agent URLs (local runs, tests)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from whoosh.domain.targets import AgentTarget, DiscoveryResult


class StaticSource:
    name = "static"

    def __init__(self, urls: Iterable[str]) -> None:
        targets: dict[str, AgentTarget] = {}
        for raw in urls:
            url = raw.strip().rstrip("/")
            if not url:
                continue
            if "://" not in url:
                url = f"http://{url}"
            parts = urlsplit(url)
            host = parts.hostname or url
            targets.setdefault(url, AgentTarget(url=url, name=parts.netloc or url, address=host))
        self._targets = tuple(targets.values())

    async def discover(self) -> DiscoveryResult:
        # Everything listed is expected: a listed agent that does not answer is "missing".
        return DiscoveryResult(self._targets, len(self._targets), self.name)
