"""WHOOSH configuration: environment variables prefixed ``WHOOSH_`` (see README)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from meshcommon.config import CommaList, ServiceSettings
from meshcommon.limits import MAX_HEALTH_BYTES, MAX_MULTIADDRS_PER_PEER


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WHOOSH_", extra="ignore")

    # HTTP (host, port and log_level come from ServiceSettings)
    admin_token: SecretStr | None = Field(
        default=None, description="Required by endpoints that change things outside WHOOSH"
    )

    # Discovery
    discovery: Literal["auto", "static", "dns", "swarm"] = Field(
        default="auto",
        description="auto (static if WHOOSH_STATIC_AGENTS is set, else the Swarm API if the "
        "Docker socket is mounted, else DNS), static, dns or swarm",
    )
    static_agents: CommaList = Field(
        default_factory=list, description="Agent base URLs, e.g. http://127.0.1.1:8080"
    )
    agent_service: str = Field(default="chorus", description="Swarm service / DNS name of agents")
    gateway_service: str = Field(
        default="chorus-gateway",
        description="Swarm discovery: service of gateway agents (listed like agents, plus "
        "their node address on a host-mode published libp2p port); empty = none",
    )
    agent_port: int = Field(default=8080, description="Agents' HTTP port (DNS and Swarm discovery)")
    dns_name: str = Field(default="", description="Defaults to tasks.<agent_service>")
    swarm_network: str = Field(
        default="chorus_net", description="Overlay network (stack prefix ok)"
    )
    docker_url: str = Field(
        default="unix:///var/run/docker.sock",
        description="Docker Engine API used by Swarm discovery",
    )

    # Health polling
    poll_interval_s: float = Field(
        default=15.0,
        description="Health polling period (answers are served from memory in between)",
    )
    converge_poll_s: float = Field(
        default=1.0,
        gt=0,
        description="While discovery converges (start-up, a Swarm service event, targets "
        "appearing or going), agents not yet healthy are re-checked this often",
    )
    converge_window_s: float = Field(
        default=30.0,
        ge=0,
        description="How long each such change keeps the fast re-checks going (0: off)",
    )
    swarm_events: bool = Field(
        default=True,
        description="Swarm discovery: start a round on service and container events instead "
        "of waiting for the next period",
    )
    left_keep_s: float = Field(
        default=900.0,
        ge=0,
        description="Swarm discovery: how long an agent that left on purpose (scale-down, "
        "drain, update) stays listed under 'left' with its reason",
    )
    health_timeout_s: float = Field(
        default=2.0,
        description="Whole-request deadline of one health check (connect, answer, body)",
    )
    max_health_bytes: int = Field(
        default=MAX_HEALTH_BYTES,
        ge=1024,
        description="A larger /api/health answer is refused unread (oversized_health)",
    )
    max_multiaddrs: int = Field(
        default=MAX_MULTIADDRS_PER_PEER,
        ge=1,
        description="An agent claiming more multiaddrs is refused (too_many_multiaddrs)",
    )
    health_attempts: int = Field(
        default=4, description="Tries per agent per round (exponential backoff with jitter between)"
    )
    backoff_initial_s: float = Field(default=0.2, description="First retry delay")
    backoff_max_s: float = Field(default=2.0, description="Longest retry delay")
    max_concurrency: int = Field(default=64, description="Health checks in flight at once")

    # Signed peer records: membership is proven by keys, never by an address
    unsigned_health: Literal["reject", "accept"] = Field(
        default="reject",
        description="A health answer without a signed peer record (a foreign or older "
        "agent): reject (not listed; named under impostors with reason missing) or accept "
        "(listed with signed: false, for a mixed fleet during an upgrade; never next to a "
        "host that proves the same peer ID with a record)",
    )
    record_max_skew_s: float = Field(
        default=300.0,
        gt=0,
        description="A peer record whose seq, read as unix nanoseconds, is further ahead of "
        "WHOOSH's clock is refused (from_the_future): it would outrank every later record",
    )

    # Multiaddr policy applied to what agents report
    overlay_cidrs: CommaList = Field(
        default_factory=list, description="Preferred networks, comma-separated CIDRs (listed first)"
    )
    allow_loopback: bool = Field(
        default=False, description="Accept 127.x multiaddrs from agents (local runs only)"
    )

    # Gitea labels: the required label set on every monitored repository. No URL, no sync.
    gitea_url: str = Field(default="", description="Gitea base URL; empty = label sync off")
    gitea_token: SecretStr | None = Field(
        default=None, description="Gitea API token (never logged or returned)"
    )
    gitea_repos: CommaList = Field(default_factory=list, description="owner/name, comma-separated")
    labels_extra: str = Field(
        default="", description="JSON list of extra labels {name,color,description}"
    )
    labels_sync_interval_s: float = Field(
        default=3600.0, description="Seconds between label syncs; 0 = on start-up only"
    )
    labels_fix_drift: bool = Field(
        default=False, description="Also fix colour/description drift of required labels"
    )
    labels_sync_on_start: bool = Field(default=True, description="Sync labels when WHOOSH starts")
    gitea_timeout_s: float = Field(default=10.0, description="Per-request Gitea timeout")

    @property
    def dns_lookup_name(self) -> str:
        """The name DNS discovery resolves: WHOOSH_DNS_NAME, else tasks.<agent_service>."""
        return self.dns_name or f"tasks.{self.agent_service}"

    @property
    def poll_budget_s(self) -> float:
        """The longest one agent's health check can take: every attempt timing out, with
        the longest backoff between attempts (checks run concurrently)."""
        attempts = max(1, self.health_attempts)
        return attempts * self.health_timeout_s + (attempts - 1) * self.backoff_max_s
