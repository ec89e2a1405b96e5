"""Discovery sources: static, DNS (fake resolver), Swarm (fake Docker API), factory."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from whoosh_testkit import make_settings

from whoosh.adapters.discovery.dns import DnsSource
from whoosh.adapters.discovery.factory import FallbackSource, build_source
from whoosh.adapters.discovery.static import StaticSource
from whoosh.adapters.discovery.swarm import SwarmTaskSource

pytestmark = pytest.mark.anyio


async def test_static_source_dedupes_and_expects_each_url() -> None:
    src = StaticSource(["http://127.0.1.1:8080/", "127.0.1.2:8080", "http://127.0.1.1:8080", ""])
    result = await src.discover()
    assert [t.url for t in result.targets] == ["http://127.0.1.1:8080", "http://127.0.1.2:8080"]
    assert [t.address for t in result.targets] == ["127.0.1.1", "127.0.1.2"]
    assert (result.expected, result.source, result.error) == (2, "static", None)


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


def _task(i: int, state: str = "running", desired: str = "running", net: str = "CHORUS_chorus_net"):
    return {
        "ID": f"task{i}",
        "Slot": i,
        "DesiredState": desired,
        "Status": {"State": state},
        "NetworksAttachments": [
            {"Network": {"Spec": {"Name": "ingress"}}, "Addresses": [f"10.0.0.{i}/24"]},
            {"Network": {"Spec": {"Name": net}}, "Addresses": [f"10.0.13.{i + 1}/24"]},
        ],
    }


class FakeSwarm:
    def __init__(self, services: list[dict[str, Any]], tasks: dict[str, list[dict[str, Any]]]):
        self._services = services
        self._tasks = tasks

    def services(self) -> list[dict[str, Any]]:
        return self._services

    def tasks(self, service_id: str) -> list[dict[str, Any]]:
        return self._tasks[service_id]


def _service(name: str, sid: str, replicas: int | None) -> dict[str, Any]:
    mode = {"Replicated": {"Replicas": replicas}} if replicas is not None else {"Global": {}}
    return {"ID": sid, "Spec": {"Name": name, "Mode": mode}}


async def test_swarm_ten_running_tasks_on_prefixed_network() -> None:
    tasks = [_task(i) for i in range(1, 11)]
    tasks.append(_task(11, state="shutdown", desired="shutdown"))
    tasks.append(_task(12, state="starting"))
    api = FakeSwarm(
        [_service("CHORUS_whoosh", "w", 1), _service("CHORUS_chorus", "c", 10)], {"c": tasks}
    )
    settings = make_settings(swarm_network="chorus_net")
    src = SwarmTaskSource(api, settings.agent_service, settings.swarm_network, 8080)
    result = await src.discover()
    assert result.error is None
    assert result.expected == 10
    assert len(result.targets) == 10
    assert result.targets[0].url == "http://10.0.13.2:8080"  # overlay address, /24 stripped
    assert result.targets[0].name == "CHORUS_chorus.1"
    assert "http://10.0.13.12:8080" not in {t.url for t in result.targets}


async def test_swarm_global_mode_and_missing_network_reported() -> None:
    tasks = [_task(1), _task(2, net="other_net")]
    api = FakeSwarm([_service("chorus", "c", None)], {"c": tasks})
    result = await SwarmTaskSource(api, "chorus", "chorus_net", 8080).discover()
    assert result.expected == 2
    assert [t.url for t in result.targets] == ["http://10.0.13.2:8080"]
    assert result.error is not None and "chorus.2" in result.error


async def test_swarm_no_service_and_api_failure() -> None:
    result = await SwarmTaskSource(FakeSwarm([], {}), "chorus", "chorus_net", 8080).discover()
    assert result.targets == () and "chorus" in (result.error or "")

    class Broken(FakeSwarm):
        def services(self) -> list[dict[str, Any]]:
            raise RuntimeError("This node is not a swarm manager")

    result = await SwarmTaskSource(Broken([], {}), "chorus", "chorus_net", 8080).discover()
    assert "not a swarm manager" in (result.error or "")


def test_factory_auto(tmp_path) -> None:
    assert build_source(make_settings(discovery="auto", static_agents=["http://a:1"])).name == (
        "static"
    )
    sock = tmp_path / "docker.sock"
    sock.touch()
    auto = build_source(make_settings(discovery="auto", docker_url=f"unix://{sock}"))
    assert isinstance(auto, FallbackSource) and auto.name == "swarm+dns"
    missing = make_settings(discovery="auto", docker_url=f"unix://{tmp_path}/nope.sock")
    assert build_source(missing).name == "dns"
    assert build_source(make_settings(discovery="swarm")).name == "swarm"


async def test_fallback_to_dns_when_swarm_fails() -> None:
    async def resolver(name: str) -> list[str]:
        return ["10.0.13.2"]

    swarm = SwarmTaskSource(FakeSwarm([], {}), "chorus", "chorus_net", 8080)
    result = await FallbackSource(swarm, DnsSource("tasks.chorus", 8080, resolver)).discover()
    assert [t.url for t in result.targets] == ["http://10.0.13.2:8080"]
    assert result.source == "dns" and result.error is None
