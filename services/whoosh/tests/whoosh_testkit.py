"""Test helpers shared by WHOOSH's test modules (imported as ``whoosh_testkit``)."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meshcommon.models import AgentHealth
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.peer_record import (
    PeerRecordVerifier,
    RecordRejected,
    peer_id_of_private_key,
    seal_peer_record,
    transport_address,
)
from whoosh.adapters.health_poller import HealthPoller
from whoosh.domain.peer_claims import RecordCheck, check_claim
from whoosh.metrics import WhooshMetrics
from whoosh.settings import Settings
from whoosh.wiring import poll_config

# Real Ed25519 identities (fixed seeds): their health answers carry valid signed records.
KEYS = {
    peer_id_of_private_key(key): key
    for key in (Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32) for n in (0xA, 0xB, 0xC))
}
PEER_A, PEER_B, PEER_C = sorted(KEYS)  # in this order, as peer IDs sort


def make_settings(**overrides: Any) -> Settings:
    """Settings isolated from the environment, with tiny timeouts and backoff."""
    values: dict[str, Any] = {
        "discovery": "static",
        "health_timeout_s": 1.0,
        "health_attempts": 3,
        "backoff_initial_s": 0.001,
        "backoff_max_s": 0.005,
        "poll_interval_s": 3600.0,
        # No fast re-checks unless a test asks: call counts stay those of the rounds run.
        "converge_window_s": 0.0,
        "overlay_cidrs": ["10.0.13.0/24"],
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def signed_record(peer_id: str, multiaddrs: list[str], seq: int | None = None) -> str:
    """The base64 peer record the key of ``peer_id`` (one of KEYS) signs for these."""
    addrs = [transport_address(a) for a in multiaddrs]
    return base64.b64encode(
        seal_peer_record(KEYS[peer_id], addrs, seq if seq is not None else time.time_ns())
    ).decode()


def health_body(
    peer_id: str, *ips: str, name: str = "", port: int = 9000, signed: bool = True
) -> dict[str, Any]:
    """An agent's answer; with a valid signed record of its addresses when ``peer_id``
    is one of KEYS and ``signed``."""
    doc: dict[str, Any] = {
        "peer_id": peer_id,
        "name": name,
        "multiaddrs": [f"/ip4/{ip}/tcp/{port}/p2p/{peer_id}" for ip in ips],
        "connected_peers": 0,
        "gossipsub_topics": ["CHORUS/coordination/v1"],
        "private_network": True,  # as every agent of a closed mesh says
    }
    if signed and peer_id in KEYS:
        doc["peer_record"] = signed_record(peer_id, doc["multiaddrs"])
    return doc


_VERIFIER = PeerRecordVerifier()


def record_check(health: AgentHealth, reached_ip: str | None) -> RecordCheck:
    """What WHOOSH's poller decides about ``health``'s record, reached at ``reached_ip``."""
    opened: Any = None
    if health.peer_record is not None:
        try:
            opened = _VERIFIER.open_base64(
                health.peer_record, expected_peer_id=health.peer_id, now_ns=time.time_ns()
            )
        except RecordRejected as exc:
            opened = exc
    return check_claim(health, opened, reached_ip)


def make_poller(
    settings: Settings, client: httpx.AsyncClient, metrics: WhooshMetrics | None = None
) -> HealthPoller:
    """A HealthPoller configured, with the multiaddr policy, as the settings say."""
    policy = MultiaddrPolicy.from_settings(settings.overlay_cidrs, settings.allow_loopback)
    return HealthPoller(poll_config(settings), client, metrics or WhooshMetrics(), policy)
