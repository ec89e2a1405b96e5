"""Request dependencies: routes declare what they need with these ``Annotated`` types.

They are ``async def`` although none of them awaits: FastAPI runs a plain ``def``
dependency in its thread pool, and the hop to a worker thread and back costs each request
two thread switches, which on a busy machine make the latency tail (a p99 of tens of ms
instead of a few)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from whoosh.api.schemas import ErrorDetail
from whoosh.service import Whoosh
from whoosh.workers.directory import AgentDirectory
from whoosh.workers.label_sync_service import OFF_MESSAGE, LabelSyncService


async def get_whoosh(request: Request) -> Whoosh:
    whoosh: Whoosh = request.app.state.service
    return whoosh


WhooshDep = Annotated[Whoosh, Depends(get_whoosh)]


async def get_directory(whoosh: WhooshDep) -> AgentDirectory:
    return whoosh.directory


DirectoryDep = Annotated[AgentDirectory, Depends(get_directory)]


# OpenAPI: what an endpoint needing the admin token (always or for some requests) answers.
ADMIN_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorDetail, "description": "Missing or wrong admin token"},
    403: {"model": ErrorDetail, "description": "Admin endpoints are off (no WHOOSH_ADMIN_TOKEN)"},
}
LABELS_OFF_RESPONSE: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorDetail, "description": "Label sync is off (no WHOOSH_GITEA_URL)"},
    500: {"model": ErrorDetail, "description": "WHOOSH_LABELS_EXTRA is invalid"},
}


async def get_label_sync(whoosh: WhooshDep) -> LabelSyncService:
    """Label sync, or 503 when it is off (no WHOOSH_GITEA_URL)."""
    if not whoosh.label_sync.enabled:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, OFF_MESSAGE)
    return whoosh.label_sync


LabelSyncDep = Annotated[LabelSyncService, Depends(get_label_sync)]


# -- the admin token ------------------------------------------------------------------
# Endpoints that change things outside WHOOSH (Gitea writes, refreshes that fan out to every
# agent) need ``Authorization: Bearer <WHOOSH_ADMIN_TOKEN>``. Read-only ones stay open.


def verify_admin_token(whoosh: Whoosh, authorization: str | None) -> None:
    """403 when no admin token is configured; 401 when it is missing or wrong."""
    token = whoosh.settings.admin_token
    if token is None or not token.get_secret_value():
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "admin endpoints are disabled: set WHOOSH_ADMIN_TOKEN"
        )
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        presented.encode(), token.get_secret_value().encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong admin token",
            headers={"WWW-Authenticate": "Bearer"},
        )


# Declares the bearer scheme in OpenAPI for the endpoints that always need it.
_bearer = HTTPBearer(auto_error=False, description="WHOOSH_ADMIN_TOKEN")


async def require_admin(
    whoosh: WhooshDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> None:
    presented = f"{credentials.scheme} {credentials.credentials}" if credentials else None
    verify_admin_token(whoosh, presented)


async def defer_admin_check(
    whoosh: WhooshDep, authorization: Annotated[str | None, Header()] = None
) -> Callable[[], None]:
    """For endpoints where only some requests need the token (``?refresh=true``, a sync
    that is not a dry run): the route calls it when the request does."""
    return lambda: verify_admin_token(whoosh, authorization)


# Every request needs the token: ``dependencies=[AdminToken]``.
AdminToken = Depends(require_admin)
# Some requests need it: a parameter ``check_admin: AdminCheck``, called when they do.
AdminCheck = Annotated[Callable[[], None], Depends(defer_admin_check)]
