"""Serving a service: the same FastAPI app shape and the same uvicorn set-up for all three."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator, Sequence
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
    and access logs are off (health checks and scrapes would drown everything else).
    HTTP is parsed by httptools, named rather than left to uvicorn's "auto" (which falls
    back to the pure-Python h11 without a word): it costs about 40 % less CPU per request,
    and every service answers a request per agent per poll or refresh round."""
    import uvicorn

    from meshcommon.quiet_server import QuietServer

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
        http="httptools",
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
    if blocking := thread_pool_calls(app):
        raise TypeError(
            f"{title}: make these async (FastAPI runs a plain def in its thread pool, two "
            f"thread switches per request): {', '.join(blocking)}"
        )
    return app


def thread_pool_calls(app: FastAPI) -> list[str]:
    """The routes and dependencies of ``app`` that FastAPI would run in its thread pool
    (plain ``def``). The services' handlers only read memory or await, so none needs a
    worker thread, and the hop to one and back is most of a request's latency tail on a
    busy machine; anything that blocks uses ``asyncio.to_thread`` explicitly instead."""
    from fastapi.routing import APIRoute

    def on_loop(call: Any) -> bool:
        return any(
            inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f)
            for f in (call, type(call).__call__)
        )

    found: list[str] = []

    def walk(dependant: Any, route: str) -> None:
        if dependant.call is not None and not on_loop(dependant.call):
            found.append(f"{route}: {getattr(dependant.call, '__qualname__', dependant.call)}")
        for sub in dependant.dependencies:
            walk(sub, route)

    def routes(container: Any) -> Iterator[APIRoute]:
        for route in container.routes:
            if isinstance(route, APIRoute):
                yield route
            elif (included := getattr(route, "original_router", None)) is not None:
                yield from routes(included)  # FastAPI >= 0.165 wraps included routers

    for route in routes(app):
        walk(route.dependant, f"{','.join(sorted(route.methods or ()))} {route.path}")
    return sorted(set(found))


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
