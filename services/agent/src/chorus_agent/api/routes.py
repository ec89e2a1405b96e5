"""HTTP routes: they read the agent's state and compose the response."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chorus_agent.api.deps import AgentDep
from chorus_agent.domain.health import build_health
from meshcommon.models import AgentHealth

router = APIRouter()


@router.get("/api/health", response_model=AgentHealth)
async def health(agent: AgentDep) -> AgentHealth:
    snap = await agent.runtime.snapshot()
    agent.metrics.connected_peers.set(len(snap.connected_peers))
    return build_health(
        agent.settings,
        snap,
        agent.advertised(),
        agent.work,
        version=agent.version,
        uptime_s=agent.uptime_s(),
        known_peers=len(agent.book),
    )


@router.get("/api/v1/mesh")
async def mesh(agent: AgentDep) -> dict[str, Any]:
    """The libp2p view of this agent: per topic the GossipSub mesh, fanout and every
    peer's announced subscriptions; per connection direction, address, age and RTT."""
    view = await agent.runtime.mesh_view()
    return view.to_dict()


@router.get("/metrics")
async def metrics(agent: AgentDep) -> Response:
    snap = await agent.runtime.snapshot()
    agent.metrics.connected_peers.set(len(snap.connected_peers))
    return Response(generate_latest(agent.metrics.registry), media_type=CONTENT_TYPE_LATEST)
