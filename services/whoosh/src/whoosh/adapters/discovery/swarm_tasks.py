"""What the Engine API's task, service and node objects say, as plain values: which service
is the one configured, a task's address on a network, where a task is published, whether its
spec is still its service's, which slots are held, and why a stopped task stopped
(``StoppedTask``, judged by ``whoosh.domain.departures``). Discovery and the diagnosis's
Swarm reader (``whoosh.adapters.swarm_inspect``) both read the Engine through these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from whoosh.domain.stack_names import matches_stack_name
from whoosh.domain.targets import StoppedTask

# Desired states of a task Swarm stopped on purpose (``remove``: scaled down).
STOPPED_DESIRED_STATES: Final = frozenset({"shutdown", "remove"})


def pick_service(services: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    """The service named ``wanted``, else the first (by name) under a stack prefix."""

    def name(svc: dict[str, Any]) -> str:
        return str(svc.get("Spec", {}).get("Name", ""))

    exact = [s for s in services if name(s) == wanted]
    if exact:
        return exact[0]
    prefixed = sorted((s for s in services if matches_stack_name(name(s), wanted)), key=name)
    return prefixed[0] if prefixed else None


def task_address(task: dict[str, Any], network: str) -> str | None:
    """The task's IP on ``network``: the exactly named network first, then one under a
    stack prefix; None when it has no address there."""
    attachments = task.get("NetworksAttachments") or []
    for exact in (True, False):
        for att in attachments:
            net_name = str(att.get("Network", {}).get("Spec", {}).get("Name", ""))
            ok = net_name == network if exact else matches_stack_name(net_name, network)
            if ok and att.get("Addresses"):
                return str(att["Addresses"][0]).split("/", 1)[0]  # "10.0.13.5/24"
    return None


def replicas_of(svc: dict[str, Any]) -> int | None:
    """Desired replicas of a replicated service; None for a global one."""
    replicated = svc["Spec"].get("Mode", {}).get("Replicated")
    return int(replicated.get("Replicas", 0)) if replicated is not None else None


def node_address(node: dict[str, Any]) -> str | None:
    """The address the node is reached at (its Swarm advertise address). A manager may
    report 0.0.0.0 in ``Status.Addr``; its ``ManagerStatus.Addr`` ("ip:2377") then says."""
    addr = str((node.get("Status") or {}).get("Addr") or "")
    if addr in ("", "0.0.0.0", "::"):
        manager = str((node.get("ManagerStatus") or {}).get("Addr") or "")
        addr = manager.rsplit(":", 1)[0].strip("[]") if manager else ""
    return addr or None


def host_ports(task: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    """(container port, node port) of every TCP port the task publishes in host mode."""
    ports = ((task.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []
    return tuple(
        (int(p["TargetPort"]), int(p["PublishedPort"]))
        for p in ports
        if p.get("PublishMode") == "host"
        and p.get("Protocol", "tcp") == "tcp"
        and p.get("TargetPort")
        and p.get("PublishedPort")
    )


# Set by the orchestrator on every task it creates, absent from the service's template.
FILLED_IN_SPEC: Final[Mapping[str, Any]] = {"Runtime": "container"}


def same_spec(task_spec: dict[str, Any] | None, template: dict[str, Any] | None) -> bool:
    """Whether a task was created from ``template`` (the service's current task spec)."""
    task_spec, template = task_spec or {}, template or {}
    return all(
        task_spec.get(key, FILLED_IN_SPEC.get(key)) == template.get(key, FILLED_IN_SPEC.get(key))
        for key in set(task_spec) | set(template)
    )


def live_slots(tasks: list[dict[str, Any]]) -> frozenset[int]:
    """Slots a task holds or is about to hold (desired running, or ready: a replacement
    waiting for its predecessor to stop)."""
    return frozenset(
        int(t["Slot"])
        for t in tasks
        if t.get("Slot") and str(t.get("DesiredState", "")) not in STOPPED_DESIRED_STATES
    )


def stopped_tasks(
    tasks: list[dict[str, Any]], svc: dict[str, Any], nodes: dict[str, dict[str, Any]]
) -> list[StoppedTask]:
    template = svc["Spec"].get("TaskTemplate")
    update_state = str((svc.get("UpdateStatus") or {}).get("State", ""))
    live = live_slots(tasks)
    stopped = []
    for task in tasks:
        desired = str(task.get("DesiredState", ""))
        if desired not in STOPPED_DESIRED_STATES:
            continue
        node = nodes.get(str(task.get("NodeID", "")), {})
        slot = task.get("Slot")
        stopped.append(
            StoppedTask(
                task_id=str(task.get("ID", "")),
                slot=int(slot) if slot else None,
                slot_live=bool(slot) and int(slot) in live,
                desired_state=desired,
                state=str((task.get("Status") or {}).get("State", "")),
                node_ready=(node.get("Status") or {}).get("State") == "ready",
                node_draining=(node.get("Spec") or {}).get("Availability") == "drain",
                outdated_spec=not same_spec(task.get("Spec"), template),
                rolling_back=update_state.startswith("rollback"),
            )
        )
    return stopped
