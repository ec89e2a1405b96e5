"""Monitor configuration: environment variables prefixed ``MONITOR_``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshcommon.config import CommaList
from meshcommon.gossip import DEFAULT_MAX_MESSAGE_BYTES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore")

    # HTTP API + dashboard
    host: str = "0.0.0.0"
    port: int = 8080
    log_level: str = "INFO"

    # libp2p
    p2p_host: str = "0.0.0.0"
    p2p_port: int = 9000
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
    bootstrap_refresh_s: float = Field(default=10.0, gt=0)
    bootstrap_cache_path: str = "/tmp/hmmm-monitor/bootstrap.json"
    bootstrap_attempts: int = Field(default=5, ge=1)
    bootstrap_backoff_initial_s: float = 0.2
    bootstrap_backoff_max_s: float = 2.0
    bootstrap_timeout_s: float = 3.0

    # Dialling
    dial_concurrency: int = Field(default=16, ge=1)
    dial_backoff_initial_s: float = 2.0
    dial_backoff_max_s: float = 60.0
    overlay_cidrs: CommaList = Field(default_factory=list)
    allow_loopback: bool = False

    # Messages. Agents broadcast availability every 30 s; a window of 1.5x that tolerates
    # one late or lost broadcast (GC pause, mesh re-graft) without flapping "missing", yet
    # flags an agent that missed two broadcasts in a row.
    heard_window_s: float = 45.0
    messages_keep: int = Field(default=5000, ge=1)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    log_messages_to_stdout: bool = True
    invalid_log_interval_s: float = Field(
        default=10.0, description="At most one 'invalid message' log line per sender per interval"
    )
