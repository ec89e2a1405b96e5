"""The agent's FastAPI app: the lifespan starts and stops the agent, routers compose."""

from __future__ import annotations

from fastapi import FastAPI

from chorus_agent.api import routes
from chorus_agent.service import Agent
from chorus_agent.settings import Settings
from chorus_agent.wiring import VERSION, build_agent
from meshcommon.serve import service_app


def create_app(settings: Settings | None = None, *, agent: Agent | None = None) -> FastAPI:
    agent = agent or build_agent(settings or Settings())
    return service_app(agent, title="CHORUS agent", version=VERSION, routers=[routes.router])
