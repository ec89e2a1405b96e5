"""WHOOSH configuration: environment variables prefixed ``WHOOSH_`` (see README)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshcommon.config import CommaList


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WHOOSH_", extra="ignore")

    # HTTP
    host: str = "0.0.0.0"
    port: int = 8080
    admin_token: SecretStr | None = Field(
        default=None, description="Required by endpoints that change things outside WHOOSH"
    )
    log_level: str = "INFO"

    # Discovery
    discovery: Literal["auto", "static", "dns", "swarm"] = "auto"
    static_agents: CommaList = Field(
        default_factory=list, description="Agent base URLs, e.g. http://127.0.1.1:8080"
    )
    agent_service: str = Field(default="chorus", description="Swarm service / DNS name of agents")
    agent_port: int = 8080
    dns_name: str = Field(default="", description="Defaults to tasks.<agent_service>")
    swarm_network: str = Field(
        default="chorus_net", description="Overlay network (stack prefix ok)"
    )
    docker_url: str = "unix:///var/run/docker.sock"

    # Health polling
    poll_interval_s: float = 15.0
    health_timeout_s: float = 2.0
    health_attempts: int = 4
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 2.0
    max_concurrency: int = 64

    # Multiaddr policy applied to what agents report
    overlay_cidrs: CommaList = Field(default_factory=list)
    allow_loopback: bool = False

    # Gitea labels (issue: required label set). Unset URL = label sync off.
    gitea_url: str = ""
    gitea_token: SecretStr | None = None
    gitea_repos: CommaList = Field(default_factory=list, description="owner/name, comma-separated")
    labels_extra: str = Field(
        default="", description="JSON list of extra labels {name,color,description}"
    )
    labels_sync_interval_s: float = 3600.0
    labels_fix_drift: bool = False
    labels_sync_on_start: bool = True
    gitea_timeout_s: float = 10.0
