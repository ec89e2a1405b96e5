"""The monitor's FastAPI app: the lifespan starts and stops the monitor, routers compose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hmmm_monitor.api import dashboard, routes
from hmmm_monitor.service import Monitor
from hmmm_monitor.settings import Settings
from hmmm_monitor.wiring import VERSION, build_monitor


def create_app(settings: Settings | None = None, *, monitor: Monitor | None = None) -> FastAPI:
    if monitor is None:
        monitor = build_monitor(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await monitor.start()
        try:
            yield
        finally:
            await monitor.stop()

    app = FastAPI(title="HMMM monitor", version=VERSION, lifespan=lifespan)
    app.state.monitor = monitor
    app.include_router(routes.router)
    app.include_router(dashboard.router)
    return app
