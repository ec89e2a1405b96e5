"""HTTP routes: they read the agent's state and compose the response."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from chorus_agent.api.deps import AgentDep
from meshcommon.models import AgentHealth
from meshcommon.serve import (
    METRICS_RESPONSES,
    health_response,
    health_responses,
    metrics_response,
)

router = APIRouter()


@router.get("/api/health", response_model=AgentHealth, responses=health_responses(AgentHealth))
async def health(agent: AgentDep) -> JSONResponse:
    """Who the agent is, where it can be dialled, and how it is doing: ``health`` is ok,
    degraded (200) or failing (503: the libp2p node is gone or peering is stuck)."""
    doc = await agent.health()
    return health_response(doc, 503 if doc.health == "failing" else 200)


@router.get("/api/v1/mesh")
async def mesh(agent: AgentDep) -> dict[str, Any]:
    """The libp2p view of this agent: per topic the GossipSub mesh, fanout and every
    peer's announced subscriptions; per connection direction, address, age and RTT."""
    view = await agent.mesh_view()
    return view.to_dict()


@router.get("/metrics", response_class=PlainTextResponse, responses=METRICS_RESPONSES)
async def metrics(agent: AgentDep) -> Response:
    # The node gone: /api/health says so; the metrics still answer.
    with contextlib.suppress(Exception):
        await agent.observe_node()
    return metrics_response(agent.metrics.registry)
