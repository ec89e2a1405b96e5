"""WHOOSH's diagnosis: what discovery, health polling and the Swarm API show is wrong, as
findings with their evidence and fix. Pure: ``WhooshFacts`` holds everything, read by
``whoosh.adapters.swarm_inspect`` (the Swarm) and the directory's last round.

Adding a check: name its facts (a field of ``WhooshFacts``; ``X | Unavailable`` when
reading it can fail, and ``service.py`` fills it in), write one function, register it in
``CHECKS`` at the end of this module. ``_unsigned_health`` (health answers without a valid
signed record) is one: a function of the facts returning its findings, and one line::

    CHECKS.add(HEALTH_UNSIGNED, _unsigned_health)  # needs=("swarm",) if it reads the Swarm

The id is also the id of its findings. ``meshcommon.diagnosis.Checks`` runs them, lists
what ran, and skips (with the reason) the checks whose facts are ``Unavailable``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from meshcommon.diagnosis import (
    OPEN_MESH,
    PEER_GRAYLISTED,
    PNET_REFUSED,
    TOPIC_NEAR_MISS,
    Checks,
    Finding,
    Severity,
    Unavailable,
    available,
    capped,
    finding,
    graylisted_finding,
    open_mesh_finding,
    pnet_refused_finding,
    topic_near_miss_finding,
)
from meshcommon.multiaddr_policy import (
    REASON_LINK_LOCAL,
    REASON_LOOPBACK,
    REASON_OUTSIDE_OVERLAY,
    REASON_UNSPECIFIED,
)
from meshcommon.topic_near_miss import NearMiss, near_miss
from meshcommon.topics import ALL_TOPICS
from whoosh.domain.agent_status import REASON_NO_ROUTABLE, AgentStatus
from whoosh.domain.bootstrap_list import DuplicatePeerId
from whoosh.domain.peer_claims import REASON_MISSING, REASON_REPLAYED
from whoosh.domain.stack_names import matches_stack_name, without_stack_prefix

# Check ids (each is also the id of the findings it produces).
AGENT_SERVICE_NOT_FOUND = "agent_service_not_found"
AGENT_SERVICE_VIP = "agent_service_vip"
SWARM_NETWORK_NOT_FOUND = "swarm_network_not_found"
AGENTS_MISSING = "agents_missing"
AGENT_NO_ROUTABLE_ADDRESS = "agent_no_routable_address"
AGENT_OFF_OVERLAY = "agent_off_overlay"
ADDRESS_SHARED = "address_shared"
PEER_ID_DUPLICATE = "peer_id_duplicate"
AGENT_NAME_NOT_A_TASK = "agent_name_not_a_task"
AGENT_NAME_FRONTS_SEVERAL = "agent_name_fronts_several"
AGENT_NAME_UNRESOLVED = "agent_name_unresolved"
DISCOVERY_FAILED = "discovery_failed"
PEER_ID_UNPROVEN = "peer_id_unproven"
HEALTH_UNSIGNED = "health_unsigned"
# OPEN_MESH and PNET_REFUSED (imported above) are shared with the monitor.

# Refusals of a claim that mean "this host does not hold the key of the peer ID it gives"
# (domain.peer_claims); the other reasons are an answer without a usable record.
IMPOSTOR_REASONS = (REASON_REPLAYED, "bad_signature", "wrong_peer_id")
# TOPIC_NEAR_MISS (imported above) is shared with the monitor and built by meshcommon.

# Why a replica is not a healthy agent (the evidence's "why").
WHY_NOT_RUNNING = "not_running"
WHY_NO_ADDRESS = "no_address_on_network"
WHY_HEALTH_FAILING = "health_failing"
WHY_WRONG_PEER_ID = "wrong_peer_id"
WHY_NOT_DISCOVERED = "not_discovered"

# Reasons an address is not one other hosts can dial (meshcommon.multiaddr_policy).
UNROUTABLE = (REASON_LOOPBACK, REASON_LINK_LOCAL, REASON_UNSPECIFIED, REASON_OUTSIDE_OVERLAY)


@dataclass(frozen=True)
class TaskFact:
    """One task of the agent service (any state), as the Swarm API reports it."""

    task_id: str
    slot: int | None  # None in global mode
    node_id: str
    state: str  # running, starting, failed, rejected, pending, shutdown...
    desired_state: str
    error: str  # Status.Err: why it failed, empty when it did not
    message: str  # Status.Message
    updated_at: str  # ISO time of the last state change (sorts as text)
    address: str | None  # its IP on the configured network (stack prefix tolerated)
    addresses: dict[str, str] = field(default_factory=dict)  # network name -> IP


@dataclass(frozen=True)
class NetworkFact:
    name: str
    stack: str  # com.docker.stack.namespace label; "" when not from a stack
    subnets: tuple[str, ...]


@dataclass(frozen=True)
class SwarmFacts:
    """The agent service, its tasks (history included) and the engine's networks."""

    service_wanted: str  # WHOOSH_AGENT_SERVICE
    network_wanted: str  # WHOOSH_SWARM_NETWORK
    services: tuple[str, ...]  # every service name (to suggest one)
    service_name: str | None  # the agent service found (stack prefix tolerated)
    endpoint_mode: str | None  # vip (also when unset) or dnsrr
    virtual_ips: tuple[str, ...]  # the service's VIPs ("10.0.0.5/24")
    replicas: int | None  # desired replicas; None in global mode
    tasks: tuple[TaskFact, ...]
    networks: tuple[NetworkFact, ...]
    network_found: bool  # the configured network exists (stack prefix tolerated)


@dataclass(frozen=True)
class ResolvedName:
    """A configured agent name (a static URL's host, the DNS discovery name) and what it
    resolves to."""

    name: str
    configured_as: str  # the URL or setting that holds it
    addresses: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class WhooshFacts:
    source: str  # discovery source of the last round
    discovery_error: str | None
    expected: int | None
    statuses: tuple[AgentStatus, ...]
    duplicates: tuple[DuplicatePeerId, ...]
    overlay_cidrs: tuple[str, ...]  # WHOOSH_OVERLAY_CIDRS
    agent_port: int
    swarm: SwarmFacts | Unavailable  # no Docker socket, not a manager, engine wedged
    names: tuple[ResolvedName, ...] = ()
    now: float = 0.0  # unix time of the diagnosis (recent private-network refusals)

    def healthy(self) -> list[AgentStatus]:
        return [s for s in self.statuses if s.state == "healthy"]


def diagnose(facts: WhooshFacts) -> list[Finding]:
    """The findings of every check that can run on ``facts``."""
    return list(CHECKS.run(facts).findings)


def _agent(status: AgentStatus) -> dict[str, object]:
    name = (status.health.name if status.health else "") or status.target.name
    return {"name": name, "url": status.target.url, "peer_id": status.peer_id}


# -- the Swarm service and network -------------------------------------------------------
def _service_not_found(facts: WhooshFacts) -> list[Finding]:
    swarm = available(facts.swarm)
    if swarm is None or swarm.service_name is not None:
        return []
    return [
        finding(
            AGENT_SERVICE_NOT_FOUND,
            "critical",
            f"No Swarm service named {swarm.service_wanted!r} (or '*_{swarm.service_wanted}')",
            {"wanted": swarm.service_wanted, "services": list(swarm.services)},
            "Set WHOOSH_AGENT_SERVICE to the agent service's name (without its stack "
            "prefix), or deploy the agents.",
        )
    ]


def _service_vip(facts: WhooshFacts) -> list[Finding]:
    swarm = available(facts.swarm)
    if swarm is None or swarm.service_name is None or swarm.endpoint_mode != "vip":
        return []
    return [
        finding(
            AGENT_SERVICE_VIP,
            "critical",
            f"The agent service {swarm.service_name} runs with endpoint_mode vip",
            {
                "service": swarm.service_name,
                "endpoint_mode": "vip",
                "virtual_ips": list(swarm.virtual_ips),
                "why_it_breaks": "a VIP hands each connection to some replica: a dial to the "
                "service name reaches a random agent and ends in a peer-ID mismatch",
            },
            f"Set deploy.endpoint_mode: dnsrr on the agent service (docker service update "
            f"--endpoint-mode dnsrr {swarm.service_name}).",
        )
    ]


def _network(facts: WhooshFacts) -> list[Finding]:
    swarm = available(facts.swarm)
    if swarm is None or swarm.network_found:
        return []
    wanted = swarm.network_wanted
    wanted_base = wanted.split("_", 1)[1] if "_" in wanted else wanted
    on_tasks = sorted(
        {n for t in swarm.tasks if t.state == "running" for n in t.addresses} - {"ingress"}
    )
    similar = [
        n
        for n in swarm.networks
        if n.name in on_tasks
        or without_stack_prefix(n.name, n.stack) in (wanted, wanted_base)
        or matches_stack_name(n.name, wanted_base)
    ]
    suggestion = (
        without_stack_prefix(similar[0].name, similar[0].stack)
        if similar
        else (on_tasks[0] if on_tasks else "")
    )
    evidence: dict[str, object] = {
        "configured": wanted,
        "similar_networks": [n.name for n in similar],
        "agent_tasks_attached_to": on_tasks,
        "agents_found": len(facts.statuses),
    }
    fix = (
        f"Set WHOOSH_SWARM_NETWORK={suggestion} (WHOOSH accepts it with any stack prefix)."
        if suggestion
        else "Set WHOOSH_SWARM_NETWORK to the overlay network the agents are attached to."
    )
    return [
        finding(
            SWARM_NETWORK_NOT_FOUND,
            "critical",
            f"The Swarm network {wanted!r} does not exist"
            + (f"; {similar[0].name!r} does" if similar else ""),
            evidence,
            fix,
        )
    ]


# -- agents that should be there ---------------------------------------------------------
def _agents_missing(facts: WhooshFacts) -> list[Finding]:
    healthy = facts.healthy()
    peers = {s.peer_id for s in healthy}
    expected = facts.expected
    if expected is None or len(peers) >= expected:
        return []
    swarm = available(facts.swarm)
    if swarm is not None and swarm.service_name is not None:
        rows = _missing_replicas(facts, swarm)
    else:
        rows = [
            {**_agent(s), "why": WHY_HEALTH_FAILING, "reason": s.reason, "detail": s.detail}
            for s in facts.statuses
            if s.state != "healthy"
        ]
    shown, omitted = capped(rows)
    severity: Severity = "critical" if not peers else "warning"
    return [
        finding(
            AGENTS_MISSING,
            severity,
            f"{len(peers)} of {expected} agents are healthy",
            {
                "expected": expected,
                "healthy": len(peers),
                "missing": shown,
                "missing_omitted": omitted,
            },
            "Fix each missing agent for the reason given: a task that is not running "
            "(its error), no address on the network, a failing /api/health, or a peer ID "
            "another agent also uses.",
        )
    ]


def _missing_replicas(facts: WhooshFacts, swarm: SwarmFacts) -> list[dict[str, object]]:
    """One row per replica slot that has no healthy agent of its own, with why."""
    by_address = {s.target.address: s for s in facts.statuses}
    duplicated = {d.peer_id: d for d in facts.duplicates}
    # The first URL (sorted) of a duplicated peer ID keeps it; the others are "wrong".
    owner = {d.peer_id: sorted(d.targets)[0] for d in facts.duplicates}
    slots: dict[object, list[TaskFact]] = {}
    for task in swarm.tasks:
        slots.setdefault(task.slot if task.slot is not None else task.node_id, []).append(task)
    if swarm.replicas is not None:
        for slot in range(1, swarm.replicas + 1):
            slots.setdefault(slot, [])
    rows: list[dict[str, object]] = []
    for slot, tasks in sorted(slots.items(), key=lambda kv: str(kv[0]).zfill(8)):
        if swarm.replicas is not None and isinstance(slot, int) and slot > swarm.replicas:
            continue  # a slot left over from a scale-down
        running = [t for t in tasks if t.state == "running" and t.desired_state == "running"]
        base: dict[str, object] = {"slot": slot, "task": f"{swarm.service_name}.{slot}"}
        if not running:
            latest = max(tasks, key=lambda t: t.updated_at, default=None)
            failed = [t for t in tasks if t.state in ("failed", "rejected")]
            last_failure = max(failed, key=lambda t: t.updated_at, default=None)
            rows.append(
                {
                    **base,
                    "why": WHY_NOT_RUNNING,
                    "task_id": latest.task_id if latest else None,
                    "state": latest.state if latest else "no task",
                    "desired_state": latest.desired_state if latest else None,
                    "message": latest.message if latest else "",
                    # Why the slot's tasks keep failing (a crash loop shows "starting"
                    # now and the exit code of the last attempt here).
                    "error": last_failure.error
                    if last_failure
                    else (latest.error if latest else ""),
                    "failed_tasks": len(failed),
                }
            )
            continue
        task = running[0]
        base["task_id"] = task.task_id
        if task.address is None:
            rows.append(
                {
                    **base,
                    "why": WHY_NO_ADDRESS,
                    "network": swarm.network_wanted,
                    "attached_to": sorted(task.addresses),
                }
            )
            continue
        status = by_address.get(task.address)
        url = status.target.url if status else f"{task.address}:{facts.agent_port}"
        if status is None:
            rows.append({**base, "why": WHY_NOT_DISCOVERED, "url": url})
        elif status.state != "healthy":
            rows.append(
                {
                    **base,
                    "why": WHY_HEALTH_FAILING,
                    "url": url,
                    "reason": status.reason,
                    "detail": status.detail,
                }
            )
        elif status.peer_id in duplicated and owner[status.peer_id] != url:
            rows.append(
                {
                    **base,
                    "why": WHY_WRONG_PEER_ID,
                    "url": url,
                    "peer_id": status.peer_id,
                    "also_at": [u for u in duplicated[status.peer_id].targets if u != url],
                }
            )
    return rows


# -- addresses --------------------------------------------------------------------------
def _no_routable_address(facts: WhooshFacts) -> list[Finding]:
    rows = []
    reasons: set[str] = set()
    for s in facts.statuses:
        if s.reason != REASON_NO_ROUTABLE:
            continue
        # What WHOOSH refused of what it was told, and what the agent itself left out.
        refused = [{"multiaddr": r.multiaddr, "reason": r.reason} for r in s.rejected]
        own = s.health.rejected_multiaddrs if s.health else []
        reasons |= {str(r["reason"]) for r in [*refused, *own]}
        rows.append(
            {
                **_agent(s),
                "advertised": list(s.health.multiaddrs) if s.health else [],
                "refused_by_whoosh": refused,
                "not_advertised_by_agent": own,
            }
        )
    if not rows:
        return []
    shown, omitted = capped(rows)
    kinds = sorted(reasons & set(UNROUTABLE)) or sorted(reasons)
    return [
        finding(
            AGENT_NO_ROUTABLE_ADDRESS,
            "critical",
            f"{len(rows)} agent(s) answer but advertise no address other hosts can dial"
            + (f" (only {', '.join(kinds)})" if kinds else ""),
            {"agents": shown, "agents_omitted": omitted, "reasons": sorted(reasons)},
            "Make the agent listen on a routable address (AGENT_P2P_HOST=0.0.0.0 or its "
            "overlay IP) or announce one (AGENT_ANNOUNCE_ADDRS); loopback, link-local and "
            "0.0.0.0 cannot be dialled from another host.",
        )
    ]


def _overlay_networks(facts: WhooshFacts) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """WHOOSH_OVERLAY_CIDRS, else the subnets of the configured Swarm network."""
    cidrs: Sequence[str] = facts.overlay_cidrs
    swarm = available(facts.swarm)
    if not cidrs and swarm is not None:
        wanted = swarm.network_wanted
        cidrs = [
            subnet
            for n in swarm.networks
            if matches_stack_name(n.name, wanted)
            for subnet in n.subnets
        ]
    nets = []
    for cidr in cidrs:
        try:
            nets.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue
    return nets


def _off_overlay(facts: WhooshFacts) -> list[Finding]:
    nets = _overlay_networks(facts)
    if not nets:
        return []
    rows = []
    for s in facts.healthy():
        if s.accepted and not any(a.ip in net for a in s.accepted for net in nets):
            rows.append({**_agent(s), "multiaddrs": s.multiaddrs})
    if not rows:
        return []
    shown, omitted = capped(rows)
    overlay = [str(n) for n in nets]
    return [
        finding(
            AGENT_OFF_OVERLAY,
            "warning",
            f"{len(rows)} agent(s) advertise no address on the overlay {', '.join(overlay)} "
            "the others use",
            {"agents": shown, "agents_omitted": omitted, "overlay": overlay},
            "Set AGENT_OVERLAY_CIDRS (or AGENT_OVERLAY_INTERFACE) on these agents so they "
            "advertise their overlay address, not a node-local one (such as "
            "docker_gwbridge) other hosts cannot reach.",
        )
    ]


def _transport(multiaddr: str) -> str:
    return multiaddr.split("/p2p/", 1)[0]


def _shared_addresses(facts: WhooshFacts) -> list[Finding]:
    owners: dict[str, dict[str, AgentStatus]] = {}
    for s in facts.healthy():
        for addr in s.multiaddrs:
            if s.peer_id:
                owners.setdefault(_transport(addr), {})[s.peer_id] = s
    out = []
    for addr, by_peer in sorted(owners.items()):
        if len(by_peer) < 2:
            continue
        out.append(
            finding(
                ADDRESS_SHARED,
                "critical",
                f"{addr} is advertised by {len(by_peer)} different peers",
                {"address": addr, "peers": [_agent(s) for _, s in sorted(by_peer.items())]},
                "Each agent must advertise its own address: drop the shared "
                "AGENT_ANNOUNCE_ADDRS (a NAT or VIP address) so a dial reaches the peer it names.",
            )
        )
    return out


def _duplicate_peer_ids(facts: WhooshFacts) -> list[Finding]:
    return [
        finding(
            PEER_ID_DUPLICATE,
            "critical",
            f"Peer ID {dup.peer_id} answers at {len(dup.targets)} hosts",
            {"peer_id": dup.peer_id, "targets": list(dup.targets)},
            "Give each agent its own identity (with the identity secret, an "
            "AGENT_IDENTITY_SCOPE that includes the task slot; else an AGENT_IDENTITY_PATH "
            "per agent, never a copied key): two hosts with one peer ID take over each "
            "other's connections.",
        )
        for dup in facts.duplicates
    ]


# -- configured names -------------------------------------------------------------------
def _not_a_task(facts: WhooshFacts, name: ResolvedName) -> list[str]:
    """The addresses ``name`` resolves to that are no running agent task's own (empty
    when the Swarm, the agent service or its tasks are not known)."""
    swarm = available(facts.swarm)
    if swarm is None or swarm.service_name is None:
        return []
    task_ips = {ip for t in swarm.tasks if t.state == "running" for ip in t.addresses.values()}
    return [a for a in name.addresses if a not in task_ips] if task_ips else []


def _name_not_a_task(facts: WhooshFacts) -> list[Finding]:
    swarm = available(facts.swarm)
    if swarm is None:
        return []
    task_ips = {ip for t in swarm.tasks if t.state == "running" for ip in t.addresses.values()}
    vips = {v.split("/", 1)[0] for v in swarm.virtual_ips}
    out = []
    for name in facts.names:
        strangers = _not_a_task(facts, name) if name.error is None else []
        if not strangers:
            continue
        out.append(
            finding(
                AGENT_NAME_NOT_A_TASK,
                "critical",
                f"{name.name!r} resolves to {', '.join(strangers)}, which is no agent "
                "task's own address"
                + (" (the service's virtual IP)" if set(strangers) & vips else ""),
                {
                    "name": name.name,
                    "configured_as": name.configured_as,
                    "resolves_to": list(name.addresses),
                    "not_a_task": strangers,
                    "service_virtual_ips": sorted(vips),
                    "task_addresses": len(task_ips),
                },
                "Point WHOOSH at the tasks, not at a name in front of them: "
                "WHOOSH_DISCOVERY=swarm, or dns with tasks.<service> and endpoint_mode "
                "dnsrr.",
            )
        )
    return out


def _name_fronts_several(facts: WhooshFacts) -> list[Finding]:
    # A name that is no task's address is agent_name_not_a_task, the graver finding.
    return [
        finding(
            AGENT_NAME_FRONTS_SEVERAL,
            "warning",
            f"{name.configured_as} names {len(name.addresses)} hosts: each health "
            "check reaches one of them, a different one each time",
            {
                "name": name.name,
                "configured_as": name.configured_as,
                "resolves_to": list(name.addresses),
            },
            "List each agent instead of one name in front of several "
            "(WHOOSH_DISCOVERY=dns with tasks.<service>, or the Swarm API).",
        )
        for name in facts.names
        if name.error is None
        and name.configured_as.startswith(("http://", "https://"))
        and len(name.addresses) > 1
        and not _not_a_task(facts, name)
    ]


def _name_unresolved(facts: WhooshFacts) -> list[Finding]:
    # Without this, a name that resolves to nothing leaves only its effect (agents missing
    # or not discovered), not the cause.
    return [
        finding(
            AGENT_NAME_UNRESOLVED,
            "critical",
            f"{name.name!r} in {name.configured_as} does not resolve from WHOOSH",
            {"name": name.name, "configured_as": name.configured_as, "error": name.error},
            "Use a name WHOOSH resolves (the agent service's name or alias on a network "
            "WHOOSH is attached to), or let WHOOSH find the agents itself "
            "(WHOOSH_DISCOVERY=swarm, or dns with tasks.<service>).",
        )
        for name in facts.names
        if name.error is not None
    ]


# -- topics -----------------------------------------------------------------------------
def _topics(facts: WhooshFacts) -> list[Finding]:
    """Agents whose own topic list (``gossipsub_topics`` in their health) holds a name
    that is almost a mesh topic: they publish and listen where nobody else does."""
    by_miss: dict[tuple[str, str], tuple[NearMiss, list[AgentStatus]]] = {}
    for s in facts.statuses:
        for topic in s.health.gossipsub_topics[: len(ALL_TOPICS) * 4] if s.health else []:
            miss = near_miss(topic, ALL_TOPICS)
            if miss is not None:
                by_miss.setdefault((miss.topic, miss.known), (miss, []))[1].append(s)
    out = []
    for _, (miss, statuses) in sorted(by_miss.items(), key=lambda kv: kv[0]):
        shown, omitted = capped([_agent(s) for s in statuses])
        out.append(
            topic_near_miss_finding(
                miss,
                count=len(statuses),
                users="agent(s) use the topic",
                who_key="agents",
                who=shown,
                omitted=omitted,
                seen_in="the agents' gossipsub_topics in /api/health",
                fix_where="these agents' build or configuration",
            )
        )
    return out


# -- when nothing else explains it ---------------------------------------------------------
def _discovery_failed(facts: WhooshFacts) -> list[Finding]:
    if not facts.discovery_error or facts.statuses:
        return []
    return [
        finding(
            DISCOVERY_FAILED,
            "critical",
            f"Discovery ({facts.source}) finds no agent",
            {"source": facts.source, "error": facts.discovery_error},
            "Fix the error above (WHOOSH_DISCOVERY, WHOOSH_DNS_NAME, "
            "WHOOSH_STATIC_AGENTS or the Docker socket in WHOOSH_DOCKER_URL).",
        )
    ]


# -- the checks, in the order they run ---------------------------------------------------
# -- the closed mesh: keys, records, the private network ---------------------------------
def _claim(status: AgentStatus) -> dict[str, object]:
    record = status.record
    return {
        **_agent(status),
        "reason": record.reason if record else status.reason,
        "detail": (record.detail if record else status.detail) or "",
    }


def _unproven_peer_ids(facts: WhooshFacts) -> list[Finding]:
    claims = [
        _claim(s)
        for s in facts.statuses
        if s.claim_refused and s.record is not None and s.record.reason in IMPOSTOR_REASONS
    ]
    if not claims:
        return []
    shown, omitted = capped(claims)
    return [
        finding(
            PEER_ID_UNPROVEN,
            "critical",
            f"{len(claims)} host(s) give a peer ID whose key they do not prove: impostors "
            "(or a copy of another agent's answer); none of their addresses is listed",
            {"hosts": shown, "hosts_omitted": omitted},
            "Find what runs at each url and stop it if it is not yours. If it is your "
            "agent: its signed record must name the address WHOOSH reaches it at "
            "(AGENT_ANNOUNCE_ADDRS must include it), and its identity must be its own.",
        )
    ]


def _unsigned_health(facts: WhooshFacts) -> list[Finding]:
    rows = [
        {**_claim(s), "listed": False}
        for s in facts.statuses
        if s.claim_refused and s.record is not None and s.record.reason not in IMPOSTOR_REASONS
    ]
    rows += [
        {**_agent(s), "reason": REASON_MISSING, "detail": "", "listed": True}
        for s in facts.healthy()
        if s.signed is False
    ]
    if not rows:
        return []
    shown, omitted = capped(rows)
    listed = sum(1 for r in rows if r["listed"])
    return [
        finding(
            HEALTH_UNSIGNED,
            "warning",
            f"{len(rows)} health answer(s) without a valid signed peer record "
            f"({listed} listed anyway, WHOOSH_UNSIGNED_HEALTH=accept)",
            {"agents": shown, "agents_omitted": omitted},
            "Upgrade these agents to one that signs its addresses (an older or foreign "
            "agent); 'from_the_future': the agent's clock is ahead, fix its time sync. "
            "Keep WHOOSH_UNSIGNED_HEALTH=reject once every agent signs.",
        )
    ]


def _open_mesh(facts: WhooshFacts) -> list[Finding]:
    hosts = [_agent(s) for s in facts.healthy() if s.health and not s.health.private_network]
    found = open_mesh_finding(hosts, "AGENT_PNET_KEY_FILE")
    return [found] if found else []


def _pnet_refused(facts: WhooshFacts) -> list[Finding]:
    hosts = [(_agent(s), s.health.pnet_refused_recent) for s in facts.healthy() if s.health]
    found = pnet_refused_finding(hosts, facts.now)
    return [found] if found else []


def _graylisted(facts: WhooshFacts) -> list[Finding]:
    graylisted_by: dict[str, list[dict[str, object]]] = {}
    rejected: dict[str, int] = {}
    for s in facts.healthy():
        if s.health is None:
            continue
        for peer in s.health.graylisted_peers:
            graylisted_by.setdefault(peer, []).append(_agent(s))
        if s.health.graylisted_peers:
            for reason, n in s.health.gossip_rejected.items():
                rejected[reason] = rejected.get(reason, 0) + n
    found = graylisted_finding(graylisted_by, rejected)
    return [found] if found else []


CHECKS = Checks(WhooshFacts)
CHECKS.add(AGENT_SERVICE_NOT_FOUND, _service_not_found, needs=("swarm",))
CHECKS.add(AGENT_SERVICE_VIP, _service_vip, needs=("swarm",))
CHECKS.add(SWARM_NETWORK_NOT_FOUND, _network, needs=("swarm",))
CHECKS.add(AGENT_NAME_NOT_A_TASK, _name_not_a_task, needs=("swarm",))
CHECKS.add(AGENTS_MISSING, _agents_missing)
CHECKS.add(AGENT_NO_ROUTABLE_ADDRESS, _no_routable_address)
CHECKS.add(AGENT_OFF_OVERLAY, _off_overlay)
CHECKS.add(ADDRESS_SHARED, _shared_addresses)
CHECKS.add(PEER_ID_DUPLICATE, _duplicate_peer_ids)
CHECKS.add(AGENT_NAME_FRONTS_SEVERAL, _name_fronts_several)
CHECKS.add(AGENT_NAME_UNRESOLVED, _name_unresolved)
CHECKS.add(TOPIC_NEAR_MISS, _topics)
CHECKS.add(PEER_ID_UNPROVEN, _unproven_peer_ids)
CHECKS.add(HEALTH_UNSIGNED, _unsigned_health)
CHECKS.add(OPEN_MESH, _open_mesh)
CHECKS.add(PNET_REFUSED, _pnet_refused)
CHECKS.add(PEER_GRAYLISTED, _graylisted)
# A cause the other checks name is better than "finds no agent".
CHECKS.add(DISCOVERY_FAILED, _discovery_failed, last_resort=True)
