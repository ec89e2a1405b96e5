"""Response models of WHOOSH's own JSON shapes (documented in OpenAPI)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from meshcommon.health import HealthFields
from meshcommon.models import DiscoverySummary, LeftPeer


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
        "invalid_health, oversized_health, too_many_multiaddrs, no_routable_multiaddrs, or "
        "record_<reason> (its peer ID not proven by a signed peer record: see impostors)"
    )
    detail: str | None
    peer_id: str | None
    multiaddrs: list[str]
    rejected_multiaddrs: list[RejectedMultiaddr]
    last_seen: str | None
    attempts: int
    latency_ms: float | None
    signed: bool | None = Field(
        description="True: listed addresses signed by the peer ID's key; False: no valid "
        "record (refused, or listed unsigned with WHOOSH_UNSIGNED_HEALTH=accept); None: no "
        "usable answer"
    )
    record_seq: int | None = Field(description="seq of its signed peer record")


class ImpostorView(BaseModel):
    url: str
    name: str = Field(description="What discovery calls the target (not what it answered)")
    peer_id: str | None = Field(description="The peer ID it claims")
    reason: str | None = Field(
        description="missing, garbled, bad_signature, wrong_peer_id, unsupported_key_type, "
        "wrong_payload_type, too_large, from_the_future or replayed"
    )
    detail: str | None


class DuplicateView(BaseModel):
    peer_id: str
    targets: list[str] = Field(description="Every target (on different hosts) claiming it")


class AgentsView(RoundView):
    agents: list[AgentView]
    unhealthy: list[str]
    duplicate_peer_ids: list[DuplicateView]
    impostors: list[ImpostorView] = Field(
        description="Hosts claiming a peer ID without proving it with a signed peer record "
        "(none of their addresses is listed), each with the reason"
    )
    left: list[LeftPeer] = Field(
        description="Agents that left on purpose recently (scale-down, drain, update), with why"
    )
