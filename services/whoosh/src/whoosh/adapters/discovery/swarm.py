"""Docker Swarm discovery: the agent service's running tasks and their overlay addresses,
the desired replica count, and the tasks Swarm stopped (with what WHOOSH needs to tell a
scale-down, a drain or an update from a failure: ``whoosh.domain.departures``).

Robust to the stack-name prefix: ``docker stack deploy -c stack.yml CHORUS`` names the
service ``CHORUS_chorus`` and the network ``CHORUS_chorus_net``; settings say ``chorus`` and
``chorus_net``. The Docker SDK is blocking, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from whoosh.adapters.discovery.base import Watcher, http_url
from whoosh.domain.targets import AgentTarget, DiscoveryResult, StoppedTask


class SwarmApi(Protocol):
    """The Engine API calls WHOOSH needs (tests pass a fake)."""

    def services(self) -> list[dict[str, Any]]: ...

    def tasks(self, service_id: str) -> list[dict[str, Any]]:
        """Every task of the service Swarm still keeps: running, starting and stopped."""
        ...

    def nodes(self) -> list[dict[str, Any]]: ...


class DockerSwarmApi:
    """SwarmApi over the Docker SDK's low-level client."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._api: Any = None

    def _client(self) -> Any:
        if self._api is None:  # lazy: the socket may appear after startup
            import docker

            self._api = docker.DockerClient(base_url=self._base_url, timeout=10).api
        return self._api

    def services(self) -> list[dict[str, Any]]:
        return list(self._client().services())

    def tasks(self, service_id: str) -> list[dict[str, Any]]:
        return list(self._client().tasks(filters={"service": service_id}))

    def nodes(self) -> list[dict[str, Any]]:
        return list(self._client().nodes())


def matches_stack_name(actual: str, wanted: str) -> bool:
    """``CHORUS_chorus`` matches ``chorus``; so does ``chorus`` itself."""
    return actual == wanted or actual.endswith(f"_{wanted}")


def _pick_service(services: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    def name(svc: dict[str, Any]) -> str:
        return str(svc.get("Spec", {}).get("Name", ""))

    exact = [s for s in services if name(s) == wanted]
    if exact:
        return exact[0]
    prefixed = sorted((s for s in services if matches_stack_name(name(s), wanted)), key=name)
    return prefixed[0] if prefixed else None


# Desired states of a task Swarm stopped on purpose (``remove``: scaled down).
STOPPED_DESIRED_STATES = frozenset({"shutdown", "remove"})


def _replicas(svc: dict[str, Any]) -> int | None:
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


def _host_ports(task: dict[str, Any]) -> tuple[tuple[int, int], ...]:
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
FILLED_IN_SPEC: dict[str, Any] = {"Runtime": "container"}


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


def _stopped_tasks(
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


def _task_address(task: dict[str, Any], network: str) -> str | None:
    attachments = task.get("NetworksAttachments") or []
    # Exact network name first, then the stack-prefixed one.
    for exact in (True, False):
        for att in attachments:
            net_name = str(att.get("Network", {}).get("Spec", {}).get("Name", ""))
            ok = net_name == network if exact else matches_stack_name(net_name, network)
            if ok and att.get("Addresses"):
                return str(att["Addresses"][0]).split("/", 1)[0]  # "10.0.13.5/24"
    return None


class SwarmTaskSource:
    """The tasks of the agent service and of ``gateway_service`` (agents that also publish
    their libp2p port on their node, so that peers outside the overlay can dial them; see
    ``AgentTarget.host_ports``). A gateway service that does not exist is simply none."""

    name = "swarm"

    def __init__(
        self,
        api: SwarmApi,
        service: str,
        network: str,
        port: int,
        events: Callable[[], Any] | None = None,
        gateway_service: str = "",
    ) -> None:
        self.api = api
        self.service = service
        self.gateway_service = gateway_service
        self.network = network
        self.port = port
        self._events = events  # opens the engine's event stream (swarm_events)

    @property
    def services(self) -> tuple[str, ...]:
        return (self.service, self.gateway_service) if self.gateway_service else (self.service,)

    def watch(self, on_change: Callable[[str], None]) -> Watcher | None:
        if self._events is None:
            return None
        from whoosh.adapters.discovery.swarm_events import SwarmEventWatcher

        watcher = SwarmEventWatcher(self._events, self.services, on_change)
        watcher.start()
        return watcher

    async def discover(self) -> DiscoveryResult:
        try:
            return await asyncio.to_thread(self._discover_blocking)
        except Exception as exc:  # the SDK raises many types; a failed round is a state
            return DiscoveryResult((), None, self.name, f"docker: {type(exc).__name__}: {exc}")

    def _discover_blocking(self) -> DiscoveryResult:
        services = self.api.services()
        svc = _pick_service(services, self.service)
        if svc is None:
            err = f"no swarm service named {self.service!r} or '*_{self.service}'"
            return DiscoveryResult((), None, self.name, err)
        picked = [svc]
        if self.gateway_service:
            gateway = _pick_service(services, self.gateway_service)
            picked += [gateway] if gateway is not None else []
        errors: list[str] = []
        try:
            nodes = {str(n.get("ID")): n for n in self.api.nodes()}
        except Exception as exc:  # without nodes, every stop counts as a failure: say why
            errors.append(f"nodes unavailable: {type(exc).__name__}: {exc}")
            nodes = {}

        targets: dict[str, AgentTarget] = {}
        stopped: list[StoppedTask] = []
        no_address: list[str] = []
        slots: dict[str, frozenset[int]] = {}
        expected = 0
        for service in picked:
            tasks = self.api.tasks(service["ID"])
            running = [
                t
                for t in tasks
                if t.get("DesiredState") == "running"
                and t.get("Status", {}).get("State") == "running"
            ]
            slots[service["Spec"]["Name"]] = live_slots(tasks)
            replicas = _replicas(service)
            expected += len(running) if replicas is None else replicas
            stopped += _stopped_tasks(tasks, service, nodes)
            for target in self._targets(service, running, nodes, no_address):
                targets.setdefault(target.url, target)
        if no_address:  # a running task we cannot reach over the overlay: say so
            errors.append(
                f"tasks without an address on network {self.network!r}: " + ", ".join(no_address)
            )
        error = "; ".join(errors) or None
        return DiscoveryResult(
            tuple(targets.values()), expected, self.name, error, tuple(stopped), slots
        )

    def _targets(
        self,
        svc: dict[str, Any],
        running: list[dict[str, Any]],
        nodes: dict[str, dict[str, Any]],
        no_address: list[str],
    ) -> list[AgentTarget]:
        svc_name = svc["Spec"]["Name"]
        targets = []
        for task in sorted(running, key=lambda t: (t.get("Slot") or 0, t.get("ID", ""))):
            task_name = f"{svc_name}.{task.get('Slot') or task.get('NodeID', '?')}"
            ip = _task_address(task, self.network)
            if ip is None:
                no_address.append(task_name)
                continue
            host_ports = _host_ports(task)
            node = nodes.get(str(task.get("NodeID", "")), {})
            slot = task.get("Slot")
            targets.append(
                AgentTarget(
                    url=http_url(ip, self.port),
                    name=task_name,
                    address=ip,
                    task_id=str(task.get("ID", "")),
                    service=svc_name,
                    slot=int(slot) if slot else None,
                    node_address=(node_address(node) or "") if host_ports else "",
                    host_ports=host_ports,
                )
            )
        return targets
