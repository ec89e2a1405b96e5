"""The agent's FastAPI app: the lifespan starts and stops the agent, routers compose."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from chorus_agent.api.routes import router
from chorus_agent.service import Agent
from chorus_agent.settings import Settings
from chorus_agent.wiring import VERSION, build_agent


def create_app(settings: Settings | None = None, *, agent: Agent | None = None) -> FastAPI:
    if agent is None:
        agent = build_agent(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await agent.start()
        try:
            yield
        finally:
            await agent.stop()

    app = FastAPI(title="CHORUS agent", version=VERSION, lifespan=lifespan)
    app.state.agent = agent
    app.include_router(router)
    return app
