"""Monitor configuration: environment variables prefixed ``MONITOR_`` (see README)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from meshcommon.config import PeerSettings


class Settings(PeerSettings):
    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore")

    log_level: str = Field(
        default="INFO",
        description="DEBUG, INFO, WARNING, ERROR (logs go to stderr; stdout is the message log)",
    )
    bootstrap_cache_path: str = Field(
        default="/tmp/hmmm-monitor/bootstrap.json",
        description="Last good bootstrap list, used while WHOOSH is unreachable; empty = no cache",
    )

    dht_server: bool = Field(
        default=False,
        description="Answer other peers' DHT queries; off: the monitor only asks (the "
        "DHT is one more source of peers to expect), and no agent lists it as a DHT peer",
    )

    # Dialling every expected peer
    dial_concurrency: int = Field(default=16, ge=1, description="Dials in flight at once")
    forget_after_s: float = Field(
        default=300.0,
        ge=0,
        description="How long a peer that left the bootstrap list (e.g. WHOOSH saw it "
        "unreachable) stays expected, reported missing and redialled, before it is forgotten",
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
    log_messages_to_stdout: bool = Field(
        default=True, description="Write every received message to stdout as a JSON line"
    )
    invalid_log_interval_s: float = Field(
        default=10.0, description="At most one 'invalid message' log line per sender per interval"
    )

    # Diagnosis
    clock_skew_threshold_s: float = Field(
        default=5.0,
        gt=0,
        description="An agent whose message timestamps are further off the receive time "
        "(median) is reported with clock skew in /api/v1/diagnosis",
    )
    link_slow_rtt_ms: float = Field(
        default=250.0,
        gt=0,
        description="A link between two agents whose ping RTT (median of the last pings, "
        "measured by the agents themselves) is this or more is reported slow "
        "(link_degraded in /api/v1/diagnosis)",
    )
    link_lossy_ratio: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="A link between two agents where this share of the last pings (at "
        "least 3) failed is reported lossy (link_degraded in /api/v1/diagnosis)",
    )
