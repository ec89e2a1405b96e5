"""Request dependencies: routes declare what they need with these ``Annotated`` types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chorus_agent.service import Agent


def get_agent(request: Request) -> Agent:
    agent: Agent = request.app.state.service
    return agent


AgentDep = Annotated[Agent, Depends(get_agent)]
