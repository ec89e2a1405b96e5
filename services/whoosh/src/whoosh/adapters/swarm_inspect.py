"""What the diagnosis reads from the Docker Engine: the agent service's spec (endpoint
mode, VIPs, replicas), all its tasks (failed ones included, with their error) and the
engine's networks; and what configured agent names resolve to.

Discovery lists only running tasks; a diagnosis needs the ones that are not running too,
and why. The SDK is blocking: ``read_swarm_facts`` runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from whoosh.adapters.discovery.dns import Resolver, getaddrinfo_resolver
from whoosh.adapters.discovery.swarm_tasks import pick_service, task_address
from whoosh.domain.diagnosis import NetworkFact, ResolvedName, SwarmFacts, TaskFact
from whoosh.domain.stack_names import matches_stack_name
from whoosh.domain.targets import AgentTarget

STACK_LABEL = "com.docker.stack.namespace"
# Configured names resolved per diagnosis, and how long each lookup may take.
MAX_NAMES = 32
RESOLVE_TIMEOUT_S = 2.0


class SwarmInspectApi(Protocol):
    """The Engine API calls the diagnosis needs (``whoosh.adapters.docker_engine.DockerEngine``,
    the client discovery uses; tests pass a fake)."""

    def services(self) -> list[dict[str, Any]]: ...

    def tasks(self, service_id: str) -> list[dict[str, Any]]:
        """Every task of the service Swarm still keeps, failed ones included."""
        ...

    def networks(self) -> list[dict[str, Any]]: ...


def read_swarm_facts(api: SwarmInspectApi, service: str, network: str) -> SwarmFacts:
    """Blocking: the agent service, its tasks and the networks, as plain facts."""
    services = api.services()
    svc = pick_service(services, service)
    networks = tuple(_network_fact(n) for n in api.networks())
    found = any(matches_stack_name(n.name, network) for n in networks)
    names = tuple(sorted(str(s.get("Spec", {}).get("Name", "")) for s in services))
    if svc is None:
        return SwarmFacts(service, network, names, None, None, (), None, (), networks, found)
    spec = svc.get("Spec", {})
    mode = (spec.get("EndpointSpec") or {}).get("Mode") or "vip"  # Swarm's default is vip
    vips = tuple(
        str(v.get("Addr", "")) for v in (svc.get("Endpoint") or {}).get("VirtualIPs") or []
    )
    replicated = (spec.get("Mode") or {}).get("Replicated")
    replicas = int(replicated.get("Replicas", 0)) if replicated is not None else None
    tasks = tuple(_task_fact(t, network) for t in api.tasks(svc["ID"]))
    return SwarmFacts(
        service_wanted=service,
        network_wanted=network,
        services=names,
        service_name=str(spec.get("Name", service)),
        endpoint_mode=str(mode),
        virtual_ips=vips,
        replicas=replicas,
        tasks=tasks,
        networks=networks,
        network_found=found,
    )


def _network_fact(net: dict[str, Any]) -> NetworkFact:
    labels = net.get("Labels") or {}
    configs = (net.get("IPAM") or {}).get("Config") or []
    return NetworkFact(
        name=str(net.get("Name", "")),
        stack=str(labels.get(STACK_LABEL, "")),
        subnets=tuple(str(c["Subnet"]) for c in configs if c.get("Subnet")),
    )


def _task_fact(task: dict[str, Any], network: str) -> TaskFact:
    status = task.get("Status") or {}
    addresses = {}
    for att in task.get("NetworksAttachments") or []:
        name = str(att.get("Network", {}).get("Spec", {}).get("Name", ""))
        if att.get("Addresses"):
            addresses[name] = str(att["Addresses"][0]).split("/", 1)[0]
    slot = task.get("Slot")
    return TaskFact(
        task_id=str(task.get("ID", "")),
        slot=int(slot) if slot else None,
        node_id=str(task.get("NodeID", "")),
        state=str(status.get("State", "")),
        desired_state=str(task.get("DesiredState", "")),
        error=str(status.get("Err", "") or ""),
        message=str(status.get("Message", "") or ""),
        updated_at=str(task.get("UpdatedAt") or status.get("Timestamp") or ""),
        address=task_address(task, network),
        addresses=addresses,
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve_names(
    targets: Sequence[AgentTarget],
    dns_name: str | None,
    dns_addresses: Sequence[str] = (),
    resolver: Resolver = getaddrinfo_resolver,
) -> tuple[ResolvedName, ...]:
    """Configured agent names and their addresses: static URLs whose host is a name (looked
    up now, concurrently, each within ``RESOLVE_TIMEOUT_S``), and the DNS discovery name
    with the addresses discovery found for it."""
    hosts: dict[str, str] = {}
    for target in targets:
        host = urlsplit(target.url).hostname or ""
        if host and not _is_ip(host):
            hosts.setdefault(host, target.url)
    wanted = list(hosts.items())[:MAX_NAMES]

    async def one(host: str, url: str) -> ResolvedName:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                found = await resolver(host)
        except TimeoutError:  # before OSError, its base class: it carries no message
            return ResolvedName(host, url, (), f"no answer within {RESOLVE_TIMEOUT_S:g} s")
        except OSError as exc:
            return ResolvedName(host, url, (), f"{type(exc).__name__}: {exc}")
        return ResolvedName(host, url, tuple(dict.fromkeys(a.split("%", 1)[0] for a in found)))

    resolved = list(await asyncio.gather(*(one(h, u) for h, u in wanted)))
    if dns_name:
        addresses = tuple(dict.fromkeys(dns_addresses))
        resolved.append(ResolvedName(dns_name, f"WHOOSH_DNS_NAME={dns_name}", addresses))
    return tuple(resolved)
