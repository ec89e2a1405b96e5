"""Serving a service: the same FastAPI app shape and the same uvicorn set-up for all three."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from meshcommon.config import ServiceSettings

if TYPE_CHECKING:
    from fastapi import FastAPI, Response
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel


def run_http(app: Any, settings: ServiceSettings) -> None:
    """Serve ``app`` until SIGINT/SIGTERM. Logging must be configured already
    (``meshcommon.logs.configure_logging``): ``log_config=None`` keeps that one format,
    and access logs are off (health checks and scrapes would drown everything else)."""
    import uvicorn

    from meshcommon.quiet_server import QuietServer

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    QuietServer(config).run()


class Lifecycle(Protocol):
    """A service object: everything it runs starts and stops with it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def service_app(service: Lifecycle, *, title: str, version: str, routers: Sequence[Any]) -> FastAPI:
    """The FastAPI app of a service: its lifespan only starts and stops ``service``, which
    the routes reach through ``request.app.state.service`` (each service's api/deps.py)."""

    from fastapi import FastAPI

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title=title, version=version, lifespan=lifespan)
    app.state.service = service
    for router in routers:
        app.include_router(router)
    return app


# OpenAPI of every service's GET /metrics: Prometheus text, not JSON.
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format (version 0.0.4)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def metrics_response(registry: Any) -> Response:
    """The registry's metrics as a ``text/plain`` Prometheus exposition."""
    from fastapi import Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def health_responses(model: Any) -> dict[int | str, dict[str, Any]]:
    """OpenAPI of a GET /api/health: 200 while the service does its job, 503 when failing."""
    return {
        200: {"description": "ok or degraded (the problems are listed)"},
        503: {"model": model, "description": "failing: a restart is the cure"},
    }


def health_response(document: BaseModel, http_status: int) -> JSONResponse:
    """A health document (a pydantic model) with the HTTP status its verdict calls for."""
    from fastapi.responses import JSONResponse

    return JSONResponse(document.model_dump(mode="json"), status_code=http_status)
