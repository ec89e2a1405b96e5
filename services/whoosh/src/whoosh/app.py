"""The WHOOSH FastAPI app: the lifespan starts and stops WHOOSH, routers compose."""

from __future__ import annotations

from fastapi import FastAPI

from meshcommon.serve import service_app
from whoosh.api import labels, routes
from whoosh.service import Whoosh
from whoosh.settings import Settings
from whoosh.wiring import VERSION, build_whoosh


def create_app(settings: Settings | None = None, *, whoosh: Whoosh | None = None) -> FastAPI:
    whoosh = whoosh or build_whoosh(settings or Settings())
    return service_app(
        whoosh, title="WHOOSH", version=VERSION, routers=[routes.router, labels.router]
    )
