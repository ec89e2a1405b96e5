"""CHORUS agent configuration: environment variables prefixed ``AGENT_`` (see README)."""

from __future__ import annotations

import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshcommon.config import CommaList
from meshcommon.gossip import DEFAULT_MAX_MESSAGE_BYTES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore")

    # HTTP API
    host: str = Field(default="0.0.0.0", description="HTTP listen address")
    port: int = Field(default=8080, description="HTTP port (/api/health, /metrics)")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR")

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
    identity_path: str = Field(
        default="", description="Ed25519 seed file; empty = new ID per start"
    )

    # libp2p
    p2p_host: str = Field(default="0.0.0.0", description="libp2p TCP listen address")
    p2p_port: int = Field(default=9000, description="libp2p TCP port")
    overlay_cidrs: CommaList = Field(
        default_factory=list, description="Preferred networks, comma-separated CIDRs"
    )
    overlay_interface: str = Field(default="", description="Interface whose networks are preferred")
    overlay_only: bool = Field(
        default=True,
        description="With overlay networks configured, advertise and dial only addresses in "
        "them (e.g. not the node-local docker_gwbridge address other nodes cannot reach)",
    )
    allow_loopback: bool = Field(default=False, description="Advertise/dial 127.x (local runs)")
    announce_addrs: CommaList = Field(
        default_factory=list, description="Advertise these multiaddrs instead of interface ones"
    )
    max_message_bytes: int = Field(
        default=DEFAULT_MAX_MESSAGE_BYTES,
        description="Larger gossip payloads are rejected (counted, logged)",
    )

    # Gossip
    broadcast_interval_s: float = Field(
        default=30.0, description="Availability broadcast period on CHORUS/coordination/v1"
    )

    # Bootstrap: WHOOSH's list plus static multiaddrs; keep at least target_peers connected.
    whoosh_url: str = Field(
        default="",
        description="WHOOSH base URL for the bootstrap list; empty = static peers and gossip only",
    )
    bootstrap_peers: CommaList = Field(default_factory=list, description="Static /p2p/ multiaddrs")
    bootstrap_interval_s: float = Field(
        default=10.0, description="How often the agent refreshes its peer list and dials"
    )
    target_peers: int = Field(
        default=4, description="Connections the agent keeps (ring successor + random peers)"
    )
    bootstrap_timeout_s: float = Field(default=3.0, description="HTTP timeout for WHOOSH")
