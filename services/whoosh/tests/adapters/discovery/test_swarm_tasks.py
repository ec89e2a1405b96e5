"""Engine objects read as plain values."""

from __future__ import annotations

from whoosh.adapters.discovery.swarm_tasks import node_address, same_spec


def test_node_address_prefers_status_then_manager_address() -> None:
    assert node_address({"Status": {"Addr": "10.77.1.2"}}) == "10.77.1.2"
    manager = {"Status": {"Addr": "0.0.0.0"}, "ManagerStatus": {"Addr": "[fd00::1]:2377"}}
    assert node_address(manager) == "fd00::1"
    assert node_address({}) is None


def test_a_task_spec_is_its_template_plus_what_the_orchestrator_fills_in() -> None:
    template = {"ContainerSpec": {"Image": "chorus-agent:1"}, "ForceUpdate": 0}
    # What the Engine API returns for a task of that template (Docker 20.10).
    assert same_spec({**template, "Runtime": "container"}, template)
    assert not same_spec({**template, "Runtime": "container"}, {**template, "ForceUpdate": 1})
    newer = {"ContainerSpec": {"Image": "chorus-agent:2"}, "ForceUpdate": 0}
    assert not same_spec({**template, "Runtime": "container"}, newer)
    assert not same_spec({**template, "Secrets": [{"SecretName": "old"}]}, template)
