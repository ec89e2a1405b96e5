"""The monitor's FastAPI app: the lifespan starts and stops the monitor, routers compose."""

from __future__ import annotations

from fastapi import FastAPI

from hmmm_monitor.api import dashboard, routes
from hmmm_monitor.service import Monitor
from hmmm_monitor.settings import Settings
from hmmm_monitor.wiring import VERSION, build_monitor
from meshcommon.serve import service_app


def create_app(settings: Settings | None = None, *, monitor: Monitor | None = None) -> FastAPI:
    monitor = monitor or build_monitor(settings or Settings())
    return service_app(
        monitor, title="HMMM monitor", version=VERSION, routers=[routes.router, dashboard.router]
    )
