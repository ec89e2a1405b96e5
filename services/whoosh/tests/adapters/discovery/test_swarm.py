"""Swarm discovery against a fake Engine API."""

from __future__ import annotations

from typing import Any

import pytest
from whoosh_testkit import make_settings

from whoosh.adapters.discovery.swarm import SwarmTaskSource

pytestmark = pytest.mark.anyio


TEMPLATE = {"ContainerSpec": {"Image": "chorus-agent:1"}, "ForceUpdate": 0}


def _task(
    i: int,
    state: str = "running",
    desired: str = "running",
    net: str = "CHORUS_chorus_net",
    node: str = "n1",
    spec: dict[str, Any] = TEMPLATE,
) -> dict[str, Any]:
    return {
        "ID": f"task{i}",
        "Slot": i,
        "NodeID": node,
        "Spec": spec,
        "DesiredState": desired,
        "Status": {"State": state},
        "NetworksAttachments": [
            {"Network": {"Spec": {"Name": "ingress"}}, "Addresses": [f"10.0.0.{i}/24"]},
            {"Network": {"Spec": {"Name": net}}, "Addresses": [f"10.0.13.{i + 1}/24"]},
        ],
    }


def _node(node_id: str, state: str = "ready", availability: str = "active") -> dict[str, Any]:
    return {"ID": node_id, "Spec": {"Availability": availability}, "Status": {"State": state}}


class FakeSwarm:
    def __init__(
        self,
        services: list[dict[str, Any]],
        tasks: dict[str, list[dict[str, Any]]],
        nodes: list[dict[str, Any]] | None = None,
    ):
        self._services = services
        self._tasks = tasks
        self._nodes = [_node("n1")] if nodes is None else nodes

    def services(self) -> list[dict[str, Any]]:
        return self._services

    def tasks(self, service_id: str) -> list[dict[str, Any]]:
        return self._tasks[service_id]

    def nodes(self) -> list[dict[str, Any]]:
        return self._nodes


def _service(
    name: str,
    sid: str,
    replicas: int | None,
    update_state: str | None = None,
    template: dict[str, Any] = TEMPLATE,
) -> dict[str, Any]:
    mode = {"Replicated": {"Replicas": replicas}} if replicas is not None else {"Global": {}}
    svc: dict[str, Any] = {
        "ID": sid,
        "Spec": {"Name": name, "Mode": mode, "TaskTemplate": template},
    }
    if update_state:
        svc["UpdateStatus"] = {"State": update_state}
    return svc


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


async def test_swarm_stopped_tasks_carry_why_they_stopped() -> None:
    new_spec = {**TEMPLATE, "ForceUpdate": 1}
    tasks = [
        _task(1, spec=new_spec),
        _task(2, spec=new_spec, node="n2"),
        _task(3, state="running", desired="shutdown", node="n2"),  # drained, still stopping
        _task(4, state="shutdown", desired="shutdown"),  # replaced by the update
        _task(5, state="failed", desired="shutdown", spec=new_spec),  # crashed
        _task(6, state="running", desired="remove", spec=new_spec, node="n3"),  # scaled down
        _task(7, state="running", desired="shutdown", node="gone"),  # node unknown
        # Slot 4's new task, waiting for the old one to stop (stop-first).
        {**_task(4, state="ready", desired="ready", spec=new_spec), "ID": "task4b"},
    ]
    nodes = [_node("n1"), _node("n2", availability="drain"), _node("n3", state="down")]
    api = FakeSwarm([_service("CHORUS_chorus", "c", 2, template=new_spec)], {"c": tasks}, nodes)
    src = SwarmTaskSource(api, "chorus", "chorus_net", 8080)
    result = await src.discover()
    assert result.error is None
    assert [(t.name, t.task_id) for t in result.targets] == [
        ("CHORUS_chorus.1", "task1"),
        ("CHORUS_chorus.2", "task2"),
    ]
    by_id = {t.task_id: t for t in result.stopped}
    assert sorted(by_id) == ["task3", "task4", "task5", "task6", "task7"]
    t3, t4, t5, t6, t7 = (by_id[f"task{i}"] for i in range(3, 8))
    assert (t3.slot, t3.state, t3.node_ready, t3.node_draining) == (3, "running", True, True)
    assert (t4.outdated_spec, t4.node_draining, t4.rolling_back) == (True, False, False)
    assert (t3.outdated_spec, t5.state, t5.outdated_spec) == (True, "failed", False)
    assert (t6.desired_state, t6.node_ready) == ("remove", False)
    assert (t7.node_ready, t7.node_draining) == (False, False)
    # Only slot 4 has a task again; the others' slots are gone (as after a scale-down).
    assert [t.slot for t in result.stopped if t.slot_live] == [4]
    assert result.live_slots == {"CHORUS_chorus": frozenset({1, 2, 4})}


async def test_swarm_rollback_and_nodes_unavailable() -> None:
    class NoNodes(FakeSwarm):
        def nodes(self) -> list[dict[str, Any]]:
            raise RuntimeError("socket closed")

    tasks = [_task(1), _task(2, state="shutdown", desired="shutdown")]
    api = NoNodes([_service("chorus", "c", 1, update_state="rollback_started")], {"c": tasks})
    result = await SwarmTaskSource(api, "chorus", "chorus_net", 8080).discover()
    assert len(result.targets) == 1
    assert result.error == "nodes unavailable: RuntimeError: socket closed"
    (t2,) = result.stopped
    # Without node states every stop is judged a failure (node_ready False): never "left".
    assert (t2.rolling_back, t2.node_ready) == (True, False)


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


async def test_swarm_gateway_agents_are_listed_with_their_published_port() -> None:
    gw_task = _task(1, node="n2")
    gw_task["Status"]["PortStatus"] = {
        "Ports": [
            {"Protocol": "tcp", "TargetPort": 9000, "PublishedPort": 9001, "PublishMode": "host"},
            {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 8082, "PublishMode": "host"},
            {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "host"},
            {"Protocol": "tcp", "TargetPort": 7, "PublishedPort": 7007, "PublishMode": "ingress"},
        ]
    }
    gw_task["ID"] = "gw1"
    gw_task["NetworksAttachments"][1]["Addresses"] = ["10.0.13.200/24"]
    services = [
        _service("CHORUS_chorus", "c", 2),
        _service("CHORUS_chorus-gateway", "g", 1),
    ]
    # A manager that reports 0.0.0.0 as its address: its ManagerStatus says where it is.
    n2 = {**_node("n2"), "Status": {"State": "ready", "Addr": "0.0.0.0"}}
    n2["ManagerStatus"] = {"Addr": "192.168.7.2:2377"}
    api = FakeSwarm(services, {"c": [_task(1), _task(2)], "g": [gw_task]}, [_node("n1"), n2])
    src = SwarmTaskSource(api, "chorus", "chorus_net", 8080, gateway_service="chorus-gateway")
    result = await src.discover()
    assert result.error is None and result.expected == 3
    by_name = {t.name: t for t in result.targets}
    assert sorted(by_name) == ["CHORUS_chorus-gateway.1", "CHORUS_chorus.1", "CHORUS_chorus.2"]
    gw = by_name["CHORUS_chorus-gateway.1"]
    assert (gw.node_address, gw.host_ports) == ("192.168.7.2", ((9000, 9001), (8080, 8082)))
    assert (
        by_name["CHORUS_chorus.1"].host_ports == ()
        and by_name["CHORUS_chorus.1"].node_address == ""
    )
    # Not deployed (or switched off): the agents alone, and no error.
    alone = FakeSwarm([services[0]], {"c": [_task(1), _task(2)]})
    result = await SwarmTaskSource(
        alone, "chorus", "chorus_net", 8080, gateway_service="x"
    ).discover()
    assert result.error is None and result.expected == 2
