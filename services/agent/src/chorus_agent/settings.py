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
    host: str = "0.0.0.0"
    port: int = 8080
    log_level: str = "INFO"

    # Identity and description
    name: str = Field(default_factory=socket.gethostname)
    agent_id: str = Field(default="", description="Defaults to name")
    capabilities: CommaList = Field(default_factory=lambda: ["general"])
    specialization: str = "general"
    max_tasks: int = 3
    identity_path: str = Field(
        default="", description="Ed25519 seed file; empty = new ID per start"
    )

    # libp2p
    p2p_host: str = "0.0.0.0"
    p2p_port: int = 9000
    overlay_cidrs: CommaList = Field(default_factory=list, description="Preferred networks")
    overlay_interface: str = Field(default="", description="Interface whose networks are preferred")
    allow_loopback: bool = Field(default=False, description="Advertise/dial 127.x (local runs)")
    announce_addrs: CommaList = Field(
        default_factory=list, description="Advertise these multiaddrs instead of interface ones"
    )
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    # Gossip
    broadcast_interval_s: float = 30.0

    # Bootstrap: WHOOSH's list plus static multiaddrs; keep at least target_peers connected.
    whoosh_url: str = ""
    bootstrap_peers: CommaList = Field(default_factory=list, description="Static /p2p/ multiaddrs")
    bootstrap_interval_s: float = 10.0
    target_peers: int = 4
    bootstrap_timeout_s: float = 3.0
