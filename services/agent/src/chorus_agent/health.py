"""The agent's ``/api/health`` document, built from the live libp2p node."""

from __future__ import annotations

from collections.abc import Sequence

from chorus_agent.availability import WorkState
from chorus_agent.settings import Settings
from meshcommon.models import AgentHealth
from meshcommon.multiaddr_policy import FilterResult, MultiaddrPolicy
from meshcommon.netinfo import listen_ips
from meshcommon.p2p import NodeSnapshot


def advertised_multiaddrs(
    settings: Settings, policy: MultiaddrPolicy, peer_id: str, ips: Sequence[str] | None = None
) -> FilterResult:
    """Routable multiaddrs of this agent, each ending in /p2p/<peer_id>. Explicit
    ``announce_addrs`` win (NAT, host-mode ports); otherwise the interfaces' addresses."""
    if settings.announce_addrs:
        return policy.filter(settings.announce_addrs, peer_id)
    found = listen_ips(settings.p2p_host) if ips is None else ips
    return policy.advertise(found, settings.p2p_port, peer_id)


def build_health(
    settings: Settings,
    snapshot: NodeSnapshot,
    addrs: FilterResult,
    work: WorkState,
    *,
    version: str,
    uptime_s: float,
) -> AgentHealth:
    connected = len(snapshot.connected_peers)
    if not addrs.accepted:
        status = "no_routable_address"
    elif connected == 0:
        status = "isolated"
    else:
        status = "ready"
    return AgentHealth(
        peer_id=snapshot.peer_id,
        multiaddrs=addrs.multiaddrs,
        connected_peers=connected,
        gossipsub_topics=sorted(snapshot.topics),
        agent_id=settings.agent_id or settings.name,
        name=settings.name,
        version=version,
        capabilities=settings.capabilities,
        specialization=settings.specialization,
        status=status,
        uptime_seconds=round(uptime_s, 3),
        peers=list(snapshot.connected_peers),
        rejected_multiaddrs=[
            {"multiaddr": r.multiaddr, "reason": r.reason} for r in addrs.rejected
        ],
    )
