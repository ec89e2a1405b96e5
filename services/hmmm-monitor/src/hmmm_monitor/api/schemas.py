"""Response models of the routes whose shape is the monitor's own (documented in OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from meshcommon.health import HealthFields
from meshcommon.models import PrivateNetworkHealth


class MonitorHealth(HealthFields, PrivateNetworkHealth):
    version: str
    peer_id: str
    multiaddrs: list[str]
    connected_peers: int
    topics: list[str]
    uptime_seconds: float
    bootstrap: dict[str, Any] = Field(description="Where the list came from, its age, count")
    coverage: dict[str, int] = Field(description="expected / connected / heard")
    messages_received: int


class Impostor(BaseModel):
    peer_id: str = Field(description="The peer ID claimed")
    claimed_by: str = Field(description="The claimant's name (as WHOOSH found it)")
    url: str
    multiaddrs: list[str]
    multiaddr: str | None = Field(description="The address the handshake was made with")
    evidence: str | None = Field(description="What the handshake proved: the key's real owner")
    checked_at: float | None


class PeersReport(BaseModel):
    count: int
    peers: list[dict[str, Any]] = Field(
        description="Per expected peer: connection, dial history, link quality, delivery; "
        "for a conflicted peer ID, each claimant and what the handshake proved"
    )
    bootstrap: dict[str, Any]
    impostors: list[Impostor] = Field(
        default_factory=list,
        description="Hosts proven (libp2p handshake) not to hold the peer ID they claim",
    )
