"""HTTP routes: thin; state lives in the AgentDirectory, answers come from memory."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from meshcommon.models import BootstrapResponse
from meshcommon.serve import METRICS_RESPONSES, health_responses, metrics_response
from whoosh.api.conditional import MAX_WAIT_S, etag_matches, preferred_wait_s
from whoosh.api.deps import ADMIN_RESPONSES, AdminCheck, AdminToken, DirectoryDep, WhooshDep
from whoosh.api.schemas import AgentsView, RoundView, WhooshHealth
from whoosh.api.views import agents_view, health_view, round_view
from whoosh.domain.peer_view import DEFAULT_VIEW_K, MAX_VIEW_K, PEER_ID_PATTERN

router = APIRouter()

_ETAG = {"ETag": {"description": "Entity tag of the list", "schema": {"type": "string"}}}


@router.get("/api/health", response_model=WhooshHealth, responses=health_responses(WhooshHealth))
async def health(whoosh: WhooshDep) -> JSONResponse:
    """ok, degraded (200: discovery failing, no agent found or none healthy) or failing
    (503: the discovery loop is stuck; a restart is the cure)."""
    verdict = whoosh.health()
    doc = health_view(whoosh.directory.snapshot, whoosh.version, verdict)
    return JSONResponse(doc, status_code=verdict.http_status)


@router.get(
    "/api/v1/bootstrap-peers",
    response_model=BootstrapResponse,
    responses={
        200: {"headers": _ETAG},
        304: {
            "description": "Not modified: the list still has the entity tag sent in "
            "If-None-Match (after waiting up to the Prefer: wait=N seconds)",
            "headers": _ETAG,
        },
        **ADMIN_RESPONSES,
    },
)
async def bootstrap_peers(
    directory: DirectoryDep,
    check_admin: AdminCheck,
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
) -> Response:
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
    # The body as rendered for this snapshot (response_model still documents it).
    return Response(snap.bootstrap_json, media_type="application/json", headers={"ETag": snap.etag})


_VIEW_ETAG = {
    "ETag": {
        "description": "Weak entity tag of this agent's view: it changes only when the "
        "view's peers or their entries change",
        "schema": {"type": "string"},
    }
}


@router.get(
    "/api/v1/bootstrap-peers/view",
    response_model=BootstrapResponse,
    responses={
        200: {"headers": _VIEW_ETAG},
        304: {
            "description": "Not modified: the view still has the entity tag sent in "
            "If-None-Match (after waiting up to the Prefer: wait=N seconds)",
            "headers": _VIEW_ETAG,
        },
    },
)
async def bootstrap_view(
    directory: DirectoryDep,
    peer_id: Annotated[
        str,
        Query(
            pattern=PEER_ID_PATTERN,
            description="The asking peer's ID (base58): it seeds the choice and places the "
            "peer on the ring",
        ),
    ],
    k: Annotated[
        int,
        Query(ge=0, le=MAX_VIEW_K, description="Random peers besides the ring neighbours"),
    ] = DEFAULT_VIEW_K,
    if_none_match: Annotated[
        str | None, Header(description="The ETag of the view the client has")
    ] = None,
    prefer: Annotated[
        str | None,
        Header(
            description="wait=N: with If-None-Match, answer when this view changes or "
            f"after N seconds (at most {MAX_WAIT_S:g})"
        ),
    ] = None,
) -> Response:
    """One agent's view of the list: its ring successor and predecessor and ``k`` random
    peers, chosen deterministically from its peer ID (the same peers poll after poll
    while the membership near them holds), at most ``k + 2`` entries. Long polling as on
    the whole list, but only a change of this view answers: a change elsewhere in the list
    keeps the request waiting."""
    snap = directory.snapshot
    view = snap.view(peer_id, k)
    wait_s = preferred_wait_s(prefer)
    if wait_s and etag_matches(if_none_match, view.etag):
        snap, view = await directory.wait_for_view_change(peer_id, k, view.etag, wait_s)
    if etag_matches(if_none_match, view.etag):
        return Response(status_code=304, headers={"ETag": view.etag})
    return Response(
        snap.view_json(view), media_type="application/json", headers={"ETag": view.etag}
    )


@router.post(
    "/api/v1/discovery/refresh",
    dependencies=[AdminToken],
    response_model=RoundView,
    responses=ADMIN_RESPONSES,
)
async def refresh_discovery(directory: DirectoryDep) -> dict[str, Any]:
    """Poll every agent now (admin): each refresh fans out to every agent."""
    return round_view(await directory.refresh())


@router.get("/api/v1/agents", response_model=AgentsView)
async def agents(directory: DirectoryDep) -> dict[str, Any]:
    return agents_view(directory.snapshot)


@router.get("/api/v1/diagnosis")
async def diagnosis(whoosh: WhooshDep) -> dict[str, Any]:
    """Every fault WHOOSH can see (Swarm service and network, missing replicas, addresses,
    identities, configured names), with its evidence and fix."""
    return (await whoosh.diagnosis()).model_dump(mode="json")


@router.get("/metrics", response_class=PlainTextResponse, responses=METRICS_RESPONSES)
async def metrics(whoosh: WhooshDep) -> Response:
    return metrics_response(whoosh.metrics.registry)
