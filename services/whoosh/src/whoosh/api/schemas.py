"""Response models of WHOOSH's own JSON shapes (documented in OpenAPI)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from meshcommon.health import HealthFields
from meshcommon.models import DiscoverySummary


class ErrorDetail(BaseModel):
    """What an HTTP error answers (FastAPI's ``HTTPException``)."""

    detail: str


class WhooshHealth(HealthFields):
    service: str
    version: str
    discovery_source: str
    last_round_at: str | None
    last_round_seconds: float | None
    discovery_error: str | None
    summary: DiscoverySummary


class RoundView(BaseModel):
    summary: DiscoverySummary
    source: str
    updated_at: str | None
    count: int
    discovery_error: str | None


class RejectedMultiaddr(BaseModel):
    multiaddr: str
    reason: str
    detail: str


class AgentView(BaseModel):
    url: str
    name: str
    state: str = Field(description="healthy or unreachable")
    reason: str | None = Field(
        description="Why not healthy: timeout, connect_error, http_<status>, malformed_json, "
        "invalid_health, oversized_health, too_many_multiaddrs, no_routable_multiaddrs"
    )
    detail: str | None
    peer_id: str | None
    multiaddrs: list[str]
    rejected_multiaddrs: list[RejectedMultiaddr]
    last_seen: str | None
    attempts: int
    latency_ms: float | None


class DuplicateView(BaseModel):
    peer_id: str
    targets: list[str] = Field(description="Every target (on different hosts) claiming it")


class AgentsView(RoundView):
    agents: list[AgentView]
    unhealthy: list[str]
    duplicate_peer_ids: list[DuplicateView]
