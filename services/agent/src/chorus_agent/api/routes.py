"""HTTP routes: they only read the agent's state and compose the response."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chorus_agent.health import advertised_multiaddrs, build_health
from meshcommon.models import AgentHealth

router = APIRouter()


@router.get("/api/health", response_model=AgentHealth)
async def health(request: Request) -> AgentHealth:
    agent = request.app.state.agent
    snap = await agent.runtime.snapshot()
    addrs = advertised_multiaddrs(agent.settings, agent.policy, snap.peer_id)
    agent.metrics.connected_peers.set(len(snap.connected_peers))
    health_doc = build_health(
        agent.settings,
        snap,
        addrs,
        agent.work,
        version=agent.version,
        uptime_s=time.monotonic() - agent.started,
    )
    health_doc.known_peers = len(agent.book)
    return health_doc


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    agent = request.app.state.agent
    snap = await agent.runtime.snapshot()
    agent.metrics.connected_peers.set(len(snap.connected_peers))
    for topic, n in snap.dropped_by_topic.items():
        agent.metrics.dropped.labels(topic=topic).set(n)
    for reason, n in snap.outbound_dropped.items():
        agent.metrics.outbound_dropped.labels(reason=reason).set(n)
    return Response(generate_latest(agent.metrics.registry), media_type=CONTENT_TYPE_LATEST)
