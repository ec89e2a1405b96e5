"""The agent's ``/api/health`` document, from a snapshot of its libp2p node, and the
judgement of how the agent is doing (``meshcommon.health``: ok, degraded, failing)."""

from __future__ import annotations

from chorus_agent.domain.availability import WorkState
from chorus_agent.settings import Settings
from meshcommon.health import (
    HealthVerdict,
    LoopProgress,
    Problem,
    bootstrap_stale,
    stuck,
    verdict,
)
from meshcommon.models import AgentHealth, PnetRefusalRecord
from meshcommon.multiaddr_policy import FilterResult
from meshcommon.p2p.types import NodeSnapshot

STATUS_READY = "ready"
STATUS_ISOLATED = "isolated"  # listening, but connected to nobody
STATUS_NO_ROUTABLE_ADDRESS = "no_routable_address"  # nothing it could advertise


def assess_health(
    *,
    node_running: bool,
    connected: int,
    routable: bool,
    bootstrap_age_s: float | None,
    refresh_s: float,
    peering: LoopProgress,
    stuck_after_s: float,
    now: float,
) -> HealthVerdict:
    """Failing (a restart is the cure): the libp2p node does not answer, or the peering
    loop has completed no round within ``stuck_after_s``. Degraded (the agent runs; its
    place in the mesh is not what it should be): no peers, no routable address, a
    bootstrap list older than a few refresh periods."""
    return verdict(
        [
            None
            if node_running
            else Problem("node_down", "the libp2p node does not answer", failing=True),
            stuck(peering, now, stuck_after_s, "peering"),
            None
            if connected or not node_running
            else Problem("isolated", "connected to no peer: gossip reaches nobody"),
            None
            if routable
            else Problem(
                "no_routable_address", "no address peers could dial (see rejected_multiaddrs)"
            ),
            bootstrap_stale(bootstrap_age_s, refresh_s),
        ]
    )


def build_health(
    settings: Settings,
    snapshot: NodeSnapshot,
    addrs: FilterResult,
    work: WorkState,
    *,
    version: str,
    uptime_s: float,
    known_peers: int,
    judged: HealthVerdict | None = None,
    peer_record: str | None = None,
) -> AgentHealth:
    connected = len(snapshot.connected_peers)
    if not addrs.accepted:
        status = STATUS_NO_ROUTABLE_ADDRESS
    elif connected == 0:
        status = STATUS_ISOLATED
    else:
        status = STATUS_READY
    judged = judged or verdict([])
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
        private_network=bool(settings.pnet_key_file),
        pnet_refused=snapshot.pnet_refused,
        pnet_refused_recent=[PnetRefusalRecord(**vars(r)) for r in snapshot.pnet_recent],
        health=judged.status,
        reasons=judged.reasons,
        problems=[str(p) for p in judged.problems],
        peer_record=peer_record,
        graylisted_peers=list(snapshot.graylisted),
        gossip_rejected=dict(snapshot.rejected),
    )
