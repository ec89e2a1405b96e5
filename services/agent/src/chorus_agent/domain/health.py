"""The agent's ``/api/health`` document, from a snapshot of its libp2p node."""

from __future__ import annotations

from chorus_agent.domain.availability import WorkState
from chorus_agent.settings import Settings
from meshcommon.models import AgentHealth
from meshcommon.multiaddr_policy import FilterResult
from meshcommon.p2p.types import NodeSnapshot

STATUS_READY = "ready"
STATUS_ISOLATED = "isolated"  # listening, but connected to nobody
STATUS_NO_ROUTABLE_ADDRESS = "no_routable_address"  # nothing it could advertise


def build_health(
    settings: Settings,
    snapshot: NodeSnapshot,
    addrs: FilterResult,
    work: WorkState,
    *,
    version: str,
    uptime_s: float,
    known_peers: int,
) -> AgentHealth:
    connected = len(snapshot.connected_peers)
    if not addrs.accepted:
        status = STATUS_NO_ROUTABLE_ADDRESS
    elif connected == 0:
        status = STATUS_ISOLATED
    else:
        status = STATUS_READY
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
        known_peers=known_peers,
        rejected_multiaddrs=[
            {"multiaddr": r.multiaddr, "reason": r.reason} for r in addrs.rejected
        ],
    )
