"""The Docker Engine adapter: one SDK client, made on first use, for every call and stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from whoosh.adapters.docker_engine import DockerEngine, docker_available


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def services(self) -> list[dict[str, Any]]:
        self.calls.append(("services", None))
        return [{"ID": "c"}]

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(("tasks", filters))
        return []

    def nodes(self) -> list[dict[str, Any]]:
        self.calls.append(("nodes", None))
        return []

    def networks(self) -> list[dict[str, Any]]:
        self.calls.append(("networks", None))
        return []

    def events(self, **kwargs: Any) -> str:
        self.calls.append(("events", kwargs))
        return "stream"


def test_one_client_made_on_first_use_serves_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, int]] = []
    api = FakeApi()

    class FakeDockerClient:
        def __init__(self, base_url: str, timeout: int) -> None:
            made.append((base_url, timeout))
            self.api = api

    monkeypatch.setattr(docker, "DockerClient", FakeDockerClient)
    engine = DockerEngine("unix:///run/docker.sock")
    assert made == []  # nothing connects before the first call
    assert engine.services() == [{"ID": "c"}]
    engine.tasks("c")
    engine.nodes()
    engine.networks()
    assert engine.open_events() == engine.open_events() == "stream"
    assert made == [("unix:///run/docker.sock", 10)]
    assert ("tasks", {"service": "c"}) in api.calls
    assert api.calls[-1] == (
        "events",
        {"decode": True, "filters": {"type": ["service", "container"]}},
    )


def test_a_unix_socket_must_exist_other_engines_are_assumed_there(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    assert not docker_available(f"unix://{sock}")
    sock.touch()
    assert docker_available(f"unix://{sock}") and docker_available(str(sock))
    assert docker_available("tcp://10.0.0.1:2376") and docker_available("ssh://manager")
