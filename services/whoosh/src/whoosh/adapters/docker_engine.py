"""The Docker Engine API, over one Docker SDK client: what Swarm discovery
(``whoosh.adapters.discovery.swarm``), its event watcher (``swarm_events``) and the
diagnosis's Swarm reader (``whoosh.adapters.swarm_inspect``) ask the engine.

The SDK is blocking (callers run it in worker threads) and its client connects when it is
made: it is made on first use, once, since the socket may appear after start-up.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit

# Per-request timeout of the Engine API calls (the event stream has none: it stays open).
API_TIMEOUT_S = 10


def docker_available(docker_url: str) -> bool:
    """A unix socket must exist; tcp:// or ssh:// engines are assumed reachable."""
    parts = urlsplit(docker_url)
    if parts.scheme in ("unix", "http+unix", ""):
        return os.path.exists(parts.path or docker_url)
    return True


class DockerEngine:
    """``SwarmApi`` (discovery) and ``SwarmInspectApi`` (diagnosis) over one SDK client,
    which also opens the event streams."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._api: Any = None
        self._lock = threading.Lock()  # discovery's and the event watcher's threads

    def _client(self) -> Any:
        with self._lock:
            if self._api is None:  # lazy: the socket may appear after startup
                import docker

                self._api = docker.DockerClient(base_url=self.base_url, timeout=API_TIMEOUT_S).api
            return self._api

    def services(self) -> list[dict[str, Any]]:
        return list(self._client().services())

    def tasks(self, service_id: str) -> list[dict[str, Any]]:
        """Every task of the service Swarm still keeps: running, starting and stopped."""
        return list(self._client().tasks(filters={"service": service_id}))

    def nodes(self) -> list[dict[str, Any]]:
        return list(self._client().nodes())

    def networks(self) -> list[dict[str, Any]]:
        return list(self._client().networks())

    def open_events(self) -> Any:
        """A new stream of service and container events (an iterator of decoded events
        with ``close()``; the SDK reads it without a timeout)."""
        return self._client().events(decode=True, filters={"type": ["service", "container"]})
