"""HTTP routes: thin; state lives in the AgentRegistry on ``app.state.registry``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from meshcommon.models import BootstrapResponse
from whoosh.api.deps import require_admin
from whoosh.api.views import agents_view, round_view
from whoosh.registry import AgentRegistry

router = APIRouter()


def get_registry(request: Request) -> AgentRegistry:
    registry: AgentRegistry = request.app.state.registry
    return registry


Registry = Annotated[AgentRegistry, Depends(get_registry)]


@router.get("/api/health")
async def health(request: Request, registry: Registry) -> dict[str, Any]:
    snap = registry.snapshot
    return {
        "status": "ok",
        "service": "whoosh",
        "version": request.app.version,
        "discovery_source": snap.source,
        "last_round_at": snap.updated_at.isoformat() if snap.updated_at else None,
        "last_round_seconds": snap.round_seconds,
        "discovery_error": snap.discovery_error,
        "summary": snap.summary.model_dump(mode="json"),
    }


@router.get("/api/v1/bootstrap-peers", response_model=BootstrapResponse)
async def bootstrap_peers(
    request: Request,
    registry: Registry,
    refresh: Annotated[bool, Query(description="Run a discovery round first (admin)")] = False,
    authorization: Annotated[str | None, Header()] = None,
) -> BootstrapResponse:
    if refresh:
        require_admin(request, authorization)
        return (await registry.refresh()).bootstrap
    return registry.snapshot.bootstrap  # from memory: no agent is contacted


@router.post("/api/v1/discovery/refresh", dependencies=[Depends(require_admin)])
async def refresh_discovery(registry: Registry) -> dict[str, Any]:
    return round_view(await registry.refresh())


@router.get("/api/v1/agents")
async def agents(registry: Registry) -> dict[str, Any]:
    return agents_view(registry.snapshot)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST
    )
