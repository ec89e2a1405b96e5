"""HTTP routes: thin; state lives in the AgentDirectory, answers come from memory."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from meshcommon.models import BootstrapResponse
from whoosh.api.deps import AdminCheck, AdminToken, DirectoryDep, WhooshDep
from whoosh.api.views import agents_view, health_view, round_view

router = APIRouter()


@router.get("/api/health")
async def health(whoosh: WhooshDep) -> dict[str, Any]:
    return health_view(whoosh.directory.snapshot, whoosh.version)


@router.get("/api/v1/bootstrap-peers", response_model=BootstrapResponse)
async def bootstrap_peers(
    directory: DirectoryDep,
    check_admin: AdminCheck,
    refresh: Annotated[bool, Query(description="Run a discovery round first (admin)")] = False,
) -> BootstrapResponse:
    if refresh:
        check_admin()
        return (await directory.refresh()).bootstrap
    return directory.snapshot.bootstrap  # from memory: no agent is contacted


@router.post("/api/v1/discovery/refresh", dependencies=[AdminToken])
async def refresh_discovery(directory: DirectoryDep) -> dict[str, Any]:
    return round_view(await directory.refresh())


@router.get("/api/v1/agents")
async def agents(directory: DirectoryDep) -> dict[str, Any]:
    return agents_view(directory.snapshot)


@router.get("/metrics")
async def metrics(whoosh: WhooshDep) -> Response:
    return Response(generate_latest(whoosh.metrics.registry), media_type=CONTENT_TYPE_LATEST)
