"""The WHOOSH FastAPI app: wiring only (settings -> source, poller, registry, routers)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

import httpx
from fastapi import FastAPI

from meshcommon.multiaddr_policy import MultiaddrPolicy
from whoosh.adapters.discovery.base import DiscoverySource
from whoosh.adapters.discovery.factory import build_source
from whoosh.adapters.health_poller import HealthPoller
from whoosh.api.labels import router as labels_router
from whoosh.api.routes import router
from whoosh.metrics import Metrics
from whoosh.registry import AgentRegistry
from whoosh.settings import Settings
from whoosh.wiring import build_label_sync

log = logging.getLogger("whoosh")


def _version() -> str:
    try:
        return version("whoosh")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(
    settings: Settings | None = None,
    *,
    source: DiscoverySource | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    settings = settings or Settings()
    source = source or build_source(settings)
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_client = http_client is None
        # trust_env=False: agent health checks go straight to the overlay address, never
        # through an HTTP(S)_PROXY from the environment.
        client = http_client or httpx.AsyncClient(
            trust_env=False,
            limits=httpx.Limits(max_connections=max(1, settings.max_concurrency)),
        )
        poller = HealthPoller(
            settings,
            client,
            metrics,
            MultiaddrPolicy.from_settings(settings.overlay_cidrs, settings.allow_loopback),
        )
        registry = AgentRegistry(source, poller, metrics, settings.poll_interval_s)
        app.state.registry = registry
        log.info(
            "whoosh %s starting: discovery=%s poll every %.1fs",
            app.version,
            source.name,
            settings.poll_interval_s,
        )
        await registry.start()
        app.state.label_sync = build_label_sync(settings, metrics.registry)
        await app.state.label_sync.start()
        try:
            yield
        finally:
            await app.state.label_sync.stop()
            await registry.stop()
            if owns_client:
                await client.aclose()

    app = FastAPI(title="WHOOSH", version=_version(), lifespan=lifespan)
    app.state.settings = settings  # read by api.deps.require_admin
    app.state.metrics_registry = metrics.registry
    app.state.metrics = metrics
    app.include_router(router)
    app.include_router(labels_router)
    return app
