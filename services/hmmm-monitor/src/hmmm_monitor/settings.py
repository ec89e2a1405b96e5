"""Monitor configuration: environment variables prefixed ``MONITOR_``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshcommon.config import CommaList
from meshcommon.gossip import DEFAULT_MAX_MESSAGE_BYTES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore")

    # HTTP API + dashboard
    host: str = Field(default="0.0.0.0", description="HTTP listen address")
    port: int = Field(default=8080, description="HTTP port (API, dashboard, /metrics)")
    log_level: str = Field(
        default="INFO",
        description="DEBUG, INFO, WARNING, ERROR (logs go to stderr; stdout is the message log)",
    )

    # libp2p
    p2p_host: str = Field(default="0.0.0.0", description="libp2p TCP listen address")
    p2p_port: int = Field(default=9000, description="libp2p TCP port")
    identity_path: str | None = Field(
        default=None, description="32-byte seed file: a stable peer ID across restarts"
    )

    # Bootstrap
    whoosh_url: str = Field(
        default="", description="e.g. http://whoosh:8080; empty = static bootstrap_peers only"
    )
    bootstrap_peers: CommaList = Field(
        default_factory=list, description="Static multiaddrs ending in /p2p/<peer_id>"
    )
    bootstrap_refresh_s: float = Field(
        default=10.0,
        gt=0,
        description="How often the bootstrap list is fetched and missing peers re-dialled",
    )
    bootstrap_cache_path: str = Field(
        default="/tmp/hmmm-monitor/bootstrap.json",
        description="Last good bootstrap list, used while WHOOSH is unreachable",
    )
    bootstrap_attempts: int = Field(default=5, ge=1, description="Tries per WHOOSH fetch")
    bootstrap_backoff_initial_s: float = Field(default=0.2, description="First retry delay")
    bootstrap_backoff_max_s: float = Field(default=2.0, description="Longest retry delay")
    bootstrap_timeout_s: float = Field(default=3.0, description="HTTP timeout per WHOOSH try")

    # Dialling
    dial_concurrency: int = Field(default=16, ge=1, description="Dials in flight at once")
    dial_backoff_initial_s: float = Field(
        default=2.0, description="Per-peer backoff after a failed dial"
    )
    dial_backoff_max_s: float = Field(default=60.0, description="Longest per-peer dial backoff")
    forget_after_s: float = Field(
        default=300.0,
        ge=0,
        description="How long a peer that left the bootstrap list (e.g. WHOOSH saw it "
        "unreachable) stays expected, reported missing and redialled, before it is forgotten",
    )
    overlay_cidrs: CommaList = Field(
        default_factory=list, description="Preferred networks, comma-separated CIDRs (listed first)"
    )
    allow_loopback: bool = Field(
        default=False, description="Dial 127.x multiaddrs (local runs only)"
    )

    # Messages. Agents broadcast availability every 30 s; a window of 1.5x that tolerates
    # one late or lost broadcast (GC pause, mesh re-graft) without flapping "missing", yet
    # flags an agent that missed two broadcasts in a row.
    heard_window_s: float = Field(
        default=45.0,
        description="An agent counts as heard if a message arrived within this window "
        "(1.5x the broadcast period)",
    )
    messages_keep: int = Field(
        default=5000, ge=1, description="Recent messages kept for /api/v1/messages"
    )
    max_message_bytes: int = Field(
        default=DEFAULT_MAX_MESSAGE_BYTES,
        description="Larger gossip payloads are rejected (counted, logged)",
    )
    log_messages_to_stdout: bool = Field(
        default=True, description="Write every received message to stdout as a JSON line"
    )
    invalid_log_interval_s: float = Field(
        default=10.0, description="At most one 'invalid message' log line per sender per interval"
    )
