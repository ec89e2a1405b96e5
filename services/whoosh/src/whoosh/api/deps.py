"""Request dependencies shared by WHOOSH's routers."""

from __future__ import annotations

import secrets

from fastapi import Header, HTTPException, Request, status


def require_admin(request: Request, authorization: str | None = Header(default=None)) -> None:
    """Endpoints that change things outside WHOOSH (Gitea writes, refreshes that fan out to
    every agent) need ``Authorization: Bearer <WHOOSH_ADMIN_TOKEN>``. Read-only ones stay open."""
    token = request.app.state.settings.admin_token
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
