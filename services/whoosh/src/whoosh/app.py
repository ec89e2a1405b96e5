"""The WHOOSH FastAPI app: the lifespan starts and stops WHOOSH, routers compose."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from whoosh.api import labels, routes
from whoosh.service import Whoosh
from whoosh.settings import Settings
from whoosh.wiring import VERSION, build_whoosh


def create_app(settings: Settings | None = None, *, whoosh: Whoosh | None = None) -> FastAPI:
    if whoosh is None:
        whoosh = build_whoosh(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await whoosh.start()
        try:
            yield
        finally:
            await whoosh.stop()

    app = FastAPI(title="WHOOSH", version=VERSION, lifespan=lifespan)
    app.state.whoosh = whoosh
    app.include_router(routes.router)
    app.include_router(labels.router)
    return app
