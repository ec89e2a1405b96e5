"""The composition root: every part of WHOOSH, built from its ``Settings``.

Nothing else constructs collaborators; tests swap an adapter by passing it here.
"""

from __future__ import annotations

from importlib.metadata import version as package_version

import httpx
from prometheus_client import CollectorRegistry

from meshcommon.multiaddr_policy import MultiaddrPolicy
from whoosh.adapters.discovery.base import DiscoverySource
from whoosh.adapters.discovery.dns import DnsSource
from whoosh.adapters.discovery.fallback import FallbackSource
from whoosh.adapters.discovery.static import StaticSource
from whoosh.adapters.discovery.swarm import SwarmTaskSource
from whoosh.adapters.docker_engine import DockerEngine, docker_available
from whoosh.adapters.gitea import GiteaClient, RetryPolicy
from whoosh.adapters.health_poller import HealthPoller, PollConfig
from whoosh.adapters.swarm_inspect import SwarmInspectApi
from whoosh.domain.departures import Departures
from whoosh.metrics import LabelSyncMetrics, WhooshMetrics
from whoosh.service import Whoosh
from whoosh.settings import Settings
from whoosh.workers.directory import AgentDirectory
from whoosh.workers.label_applier import LabelApplier
from whoosh.workers.label_sync_service import LabelSyncConfig, LabelSyncService

VERSION = package_version("whoosh")


def build_whoosh(
    settings: Settings,
    *,
    source: DiscoverySource | None = None,
    http_client: httpx.AsyncClient | None = None,
    gitea_transport: httpx.AsyncBaseTransport | None = None,
    gitea_retry: RetryPolicy | None = None,
    swarm_inspector: SwarmInspectApi | None = None,
) -> Whoosh:
    """``source``: where agents are (default: from the settings); ``http_client``: how
    their health is asked (the caller keeps and closes one it passes); ``gitea_*``: how
    Gitea is reached; ``swarm_inspector``: the Swarm API the diagnosis reads (default: the
    Docker Engine at WHOOSH_DOCKER_URL when its socket exists, whatever the discovery)."""
    metrics = WhooshMetrics()
    # One client for the one engine (discovery, its events, the diagnosis), its socket
    # probed once: the SDK client itself connects on first use.
    engine = DockerEngine(settings.docker_url)
    engine_found = docker_available(settings.docker_url)
    owned = None
    if http_client is None:
        # trust_env=False: agent health checks go straight to the overlay address, never
        # through an HTTP(S)_PROXY from the environment.
        owned = http_client = httpx.AsyncClient(
            trust_env=False,
            limits=httpx.Limits(max_connections=max(1, settings.max_concurrency)),
        )
    policy = MultiaddrPolicy.from_settings(settings.overlay_cidrs, settings.allow_loopback)
    poller = HealthPoller(poll_config(settings), http_client, metrics, policy)
    directory = AgentDirectory(
        source or build_source(settings, engine, engine_found=engine_found),
        poller,
        metrics,
        settings.poll_interval_s,
        converge_poll_s=settings.converge_poll_s,
        converge_window_s=settings.converge_window_s,
        departures=Departures(keep_s=settings.left_keep_s),
    )
    label_sync = build_label_sync(
        settings, metrics.registry, gitea_transport=gitea_transport, gitea_retry=gitea_retry
    )
    no_swarm_reason = ""
    if swarm_inspector is None:
        if engine_found:
            swarm_inspector = engine
        else:
            no_swarm_reason = f"no Docker Engine socket at {settings.docker_url}"
    return Whoosh(
        settings,
        VERSION,
        metrics,
        directory,
        label_sync,
        owned_http_client=owned,
        swarm_inspector=swarm_inspector,
        no_swarm_reason=no_swarm_reason,
    )


def poll_config(settings: Settings) -> PollConfig:
    """What the health poller needs of the settings."""
    return PollConfig(
        max_concurrency=settings.max_concurrency,
        health_attempts=settings.health_attempts,
        backoff_initial_s=settings.backoff_initial_s,
        backoff_max_s=settings.backoff_max_s,
        health_timeout_s=settings.health_timeout_s,
        max_health_bytes=settings.max_health_bytes,
        max_multiaddrs=settings.max_multiaddrs,
        unsigned_health=settings.unsigned_health,
        record_max_skew_s=settings.record_max_skew_s,
    )


def build_source(
    settings: Settings, engine: DockerEngine, *, engine_found: bool
) -> DiscoverySource:
    """WHOOSH_DISCOVERY's source; auto: the static list if set, else the Swarm API with DNS
    behind it when the engine's socket is there (``engine_found``), else DNS."""
    match settings.discovery:
        case "static":
            return StaticSource(settings.static_agents)
        case "dns":
            return _dns_source(settings)
        case "swarm":
            return _swarm_source(settings, engine)
    if settings.static_agents:
        return StaticSource(settings.static_agents)
    if engine_found:
        return FallbackSource(_swarm_source(settings, engine), _dns_source(settings))
    return _dns_source(settings)


def _dns_source(settings: Settings) -> DnsSource:
    return DnsSource(settings.dns_lookup_name, settings.agent_port)


def _swarm_source(settings: Settings, engine: DockerEngine) -> SwarmTaskSource:
    return SwarmTaskSource(
        engine,
        settings.agent_service,
        settings.swarm_network,
        settings.agent_port,
        events=engine.open_events if settings.swarm_events else None,
        gateway_service=settings.gateway_service,
    )


def build_label_sync(
    settings: Settings,
    metrics_registry: CollectorRegistry,
    *,
    gitea_transport: httpx.AsyncBaseTransport | None = None,
    gitea_retry: RetryPolicy | None = None,
) -> LabelSyncService:
    """Label sync alone (the ``labels`` CLI needs nothing else); off without a Gitea URL."""

    def open_gitea() -> GiteaClient:
        return GiteaClient(
            settings.gitea_url,
            settings.gitea_token,
            timeout_s=settings.gitea_timeout_s,
            retry=gitea_retry,
            transport=gitea_transport,
        )

    config = LabelSyncConfig(
        repos=tuple(settings.gitea_repos),
        labels_extra=settings.labels_extra,
        fix_drift=settings.labels_fix_drift,
        interval_s=settings.labels_sync_interval_s,
        on_start=settings.labels_sync_on_start,
        has_token=settings.gitea_token is not None,
    )
    applier = LabelApplier(open_gitea) if settings.gitea_url else None
    return LabelSyncService(config, applier, LabelSyncMetrics(metrics_registry))
