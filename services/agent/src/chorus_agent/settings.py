"""CHORUS agent configuration: environment variables prefixed ``AGENT_`` (see README)."""

from __future__ import annotations

import socket

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from meshcommon.config import CommaList, PeerSettings


class Settings(PeerSettings):
    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore", populate_by_name=True)

    # Identity and description
    name: str = Field(
        default_factory=socket.gethostname,
        description="Agent name in health, bootstrap list, gossip",
    )
    agent_id: str = Field(default="", description="Defaults to name")
    capabilities: CommaList = Field(
        default_factory=lambda: ["general"], description="Comma-separated, shown in /api/health"
    )
    specialization: str = Field(
        default="general", description="Specialization advertised in /api/health"
    )
    max_tasks: int = Field(default=3, description="Capacity reported in availability broadcasts")

    # Gossip
    broadcast_interval_s: float = Field(
        default=30.0, description="Availability broadcast period on CHORUS/coordination/v1"
    )
    ping_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="Each connected peer is pinged this often (its RTT in /api/v1/mesh); "
        "a ping wakes both ends, so an idle agent pays for it",
    )

    # Peering: keep at least target_peers connected, from WHOOSH's list, static peers, gossip.
    bootstrap_refresh_s: float = Field(
        default=10.0,
        gt=0,
        # AGENT_BOOTSTRAP_INTERVAL_S was this setting's name before the agent and the
        # monitor shared one set of peer settings; it is still read.
        validation_alias=AliasChoices("AGENT_BOOTSTRAP_REFRESH_S", "AGENT_BOOTSTRAP_INTERVAL_S"),
        description="How often the bootstrap list is fetched and missing peers are dialled "
        "(AGENT_BOOTSTRAP_INTERVAL_S is read too)",
    )
    gossip_discovery: bool = Field(
        default=True,
        description="Learn peers from the multiaddrs in other agents' availability "
        "broadcasts (the broadcasts carry them either way); false = WHOOSH, static peers "
        "and the DHT only",
    )
    target_peers: int = Field(
        default=4, description="Connections the agent keeps (ring successor + random peers)"
    )
    bootstrap_view_k: int = Field(
        default=8,
        ge=0,
        le=32,
        description="Ask WHOOSH for this agent's view (its ring neighbours and this many "
        "random peers, stable while the membership holds: a few KiB, woken only when the view "
        "changes) instead of the whole list; 0 = the whole list. A WHOOSH without views "
        "gives the whole list",
    )
