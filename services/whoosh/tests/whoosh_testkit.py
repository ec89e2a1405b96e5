"""Test helpers shared by WHOOSH's test modules (imported as ``whoosh_testkit``)."""

from __future__ import annotations

from typing import Any

import httpx

from meshcommon.multiaddr_policy import MultiaddrPolicy
from whoosh.adapters.health_poller import HealthPoller
from whoosh.metrics import WhooshMetrics
from whoosh.settings import Settings

PEER_A = "12D3KooWA1111111111111111111111111111111111111111111"
PEER_B = "12D3KooWB2222222222222222222222222222222222222222222"
PEER_C = "12D3KooWC3333333333333333333333333333333333333333333"


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


def health_body(peer_id: str, *ips: str, name: str = "", port: int = 9000) -> dict[str, Any]:
    return {
        "peer_id": peer_id,
        "name": name,
        "multiaddrs": [f"/ip4/{ip}/tcp/{port}/p2p/{peer_id}" for ip in ips],
        "connected_peers": 0,
        "gossipsub_topics": ["CHORUS/coordination/v1"],
    }


def make_poller(
    settings: Settings, client: httpx.AsyncClient, metrics: WhooshMetrics | None = None
) -> HealthPoller:
    """A HealthPoller with the multiaddr policy the settings describe."""
    policy = MultiaddrPolicy.from_settings(settings.overlay_cidrs, settings.allow_loopback)
    return HealthPoller(settings, client, metrics or WhooshMetrics(), policy)
