"""Request dependencies: routes declare what they need with these ``Annotated`` types
(``async def``, so that FastAPI calls them on the event loop instead of hopping to its
thread pool for each request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chorus_agent.service import Agent


async def get_agent(request: Request) -> Agent:
    agent: Agent = request.app.state.service
    return agent


AgentDep = Annotated[Agent, Depends(get_agent)]
