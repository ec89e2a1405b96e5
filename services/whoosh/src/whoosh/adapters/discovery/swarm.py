"""Docker Swarm discovery: the agent service's running tasks and their overlay addresses,
the desired replica count, and the tasks Swarm stopped (with what WHOOSH needs to tell a
scale-down, a drain or an update from a failure: ``whoosh.domain.departures``).

Robust to the stack-name prefix (``whoosh.domain.stack_names``): settings say ``chorus`` and
``chorus_net``, a stack deploys ``CHORUS_chorus`` on ``CHORUS_chorus_net``. The Docker SDK is
blocking, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from whoosh.adapters.discovery.base import Watcher, http_url
from whoosh.adapters.discovery.swarm_events import OpenStream, SwarmEventWatcher
from whoosh.adapters.discovery.swarm_tasks import (
    host_ports,
    live_slots,
    node_address,
    pick_service,
    replicas_of,
    stopped_tasks,
    task_address,
)
from whoosh.domain.targets import AgentTarget, DiscoveryResult, StoppedTask


class SwarmApi(Protocol):
    """The Engine API calls discovery needs (``whoosh.adapters.docker_engine.DockerEngine``;
    tests pass a fake)."""

    def services(self) -> list[dict[str, Any]]: ...

    def tasks(self, service_id: str) -> list[dict[str, Any]]:
        """Every task of the service Swarm still keeps: running, starting and stopped."""
        ...

    def nodes(self) -> list[dict[str, Any]]: ...


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
        events: OpenStream | None = None,
        gateway_service: str = "",
    ) -> None:
        self.api = api
        self.service = service
        self.gateway_service = gateway_service
        self.network = network
        self.port = port
        self._events = events  # opens the engine's event stream (DockerEngine.open_events)

    @property
    def services(self) -> tuple[str, ...]:
        return (self.service, self.gateway_service) if self.gateway_service else (self.service,)

    def watch(self, on_change: Callable[[str], None]) -> Watcher | None:
        if self._events is None:
            return None
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
        svc = pick_service(services, self.service)
        if svc is None:
            err = f"no swarm service named {self.service!r} or '*_{self.service}'"
            return DiscoveryResult((), None, self.name, err)
        picked = [svc]
        if self.gateway_service:
            gateway = pick_service(services, self.gateway_service)
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
            replicas = replicas_of(service)
            expected += len(running) if replicas is None else replicas
            stopped += stopped_tasks(tasks, service, nodes)
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
            ip = task_address(task, self.network)
            if ip is None:
                no_address.append(task_name)
                continue
            published = host_ports(task)
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
                    node_address=(node_address(node) or "") if published else "",
                    host_ports=published,
                )
            )
        return targets
