"""service_app: the app shape every service shares."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, Request

from meshcommon.serve import service_app


class _Service:
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _sync_dep(request: Request) -> str:
    return request.url.path


async def _async_dep(request: Request) -> str:
    return request.url.path


def test_a_route_or_dependency_that_would_run_in_the_thread_pool_is_refused() -> None:
    router = APIRouter()

    @router.get("/async")
    async def fine(path: Annotated[str, Depends(_async_dep)]) -> str:
        return path

    @router.get("/sync-dep")
    async def hops(path: Annotated[str, Depends(_sync_dep)]) -> str:
        return path

    @router.get("/sync-route")
    def blocks() -> str:
        return "x"

    with pytest.raises(TypeError) as refused:
        service_app(_Service(), title="t", version="0", routers=[router])
    message = str(refused.value)
    assert "GET /sync-dep: _sync_dep" in message
    assert "GET /sync-route" in message and "blocks" in message
    assert "/async" not in message
