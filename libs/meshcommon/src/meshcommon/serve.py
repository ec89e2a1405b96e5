"""Serving a service: the same FastAPI app shape and the same uvicorn set-up for all three."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from meshcommon.config import ServiceSettings

if TYPE_CHECKING:
    from fastapi import FastAPI


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
