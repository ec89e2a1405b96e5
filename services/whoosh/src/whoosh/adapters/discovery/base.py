"""The discovery port: the interface every source implements (it returns a
``whoosh.domain.targets.DiscoveryResult``), and the URL form sources share."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Protocol

from whoosh.domain.targets import DiscoveryResult


class DiscoverySource(Protocol):
    name: str

    async def discover(self) -> DiscoveryResult: ...


class Watcher(Protocol):
    def stop(self) -> None: ...


def watch(source: DiscoverySource, on_change: Callable[[str], None]) -> Watcher | None:
    """Start watching ``source`` if it can be watched: a source with a ``watch(on_change)``
    method (Swarm events) calls ``on_change(why)``, from any thread, when the agents change.
    None when it cannot (then only the periodic rounds find changes)."""
    start = getattr(source, "watch", None)
    return start(on_change) if callable(start) else None


def http_url(ip: str, port: int) -> str:
    """``http://10.0.13.5:8080`` or ``http://[fd00::5]:8080``."""
    try:
        is_v6 = ipaddress.ip_address(ip).version == 6
    except ValueError:
        is_v6 = False
    return f"http://[{ip}]:{port}" if is_v6 else f"http://{ip}:{port}"
