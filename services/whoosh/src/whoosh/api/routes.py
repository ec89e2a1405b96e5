"""HTTP routes: thin; state lives in the AgentDirectory, answers come from memory."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from meshcommon.models import BootstrapResponse
from whoosh.api.conditional import MAX_WAIT_S, etag_matches, preferred_wait_s
from whoosh.api.deps import AdminCheck, AdminToken, DirectoryDep, WhooshDep
from whoosh.api.views import agents_view, health_view, round_view

router = APIRouter()


@router.get("/api/health")
async def health(whoosh: WhooshDep) -> dict[str, Any]:
    return health_view(whoosh.directory.snapshot, whoosh.version)


@router.get(
    "/api/v1/bootstrap-peers",
    response_model=BootstrapResponse,
    responses={
        304: {
            "description": "Not modified: the list still has the entity tag sent in "
            "If-None-Match (after waiting up to the Prefer: wait=N seconds)"
        }
    },
)
async def bootstrap_peers(
    directory: DirectoryDep,
    check_admin: AdminCheck,
    response: Response,
    refresh: Annotated[bool, Query(description="Run a discovery round first (admin)")] = False,
    if_none_match: Annotated[
        str | None, Header(description="The ETag of the list the client has")
    ] = None,
    prefer: Annotated[
        str | None,
        Header(
            description="wait=N: with If-None-Match, answer when the list changes or "
            f"after N seconds (at most {MAX_WAIT_S:g})"
        ),
    ] = None,
) -> BootstrapResponse | Response:
    if refresh:
        check_admin()
        snap = await directory.refresh()
    else:
        snap = directory.snapshot  # from memory: no agent is contacted
        wait_s = preferred_wait_s(prefer)
        if wait_s and etag_matches(if_none_match, snap.etag):
            snap = await directory.wait_for_change(snap.etag, wait_s)
    if etag_matches(if_none_match, snap.etag):
        return Response(status_code=304, headers={"ETag": snap.etag})
    response.headers["ETag"] = snap.etag
    return snap.bootstrap


@router.post("/api/v1/discovery/refresh", dependencies=[AdminToken])
async def refresh_discovery(directory: DirectoryDep) -> dict[str, Any]:
    return round_view(await directory.refresh())


@router.get("/api/v1/agents")
async def agents(directory: DirectoryDep) -> dict[str, Any]:
    return agents_view(directory.snapshot)


@router.get("/api/v1/diagnosis")
async def diagnosis(whoosh: WhooshDep) -> dict[str, Any]:
    """Every fault WHOOSH can see (Swarm service and network, missing replicas, addresses,
    identities, configured names), with its evidence and fix."""
    return (await whoosh.diagnosis()).model_dump(mode="json")


@router.get("/metrics")
async def metrics(whoosh: WhooshDep) -> Response:
    return Response(generate_latest(whoosh.metrics.registry), media_type=CONTENT_TYPE_LATEST)
