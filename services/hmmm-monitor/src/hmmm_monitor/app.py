"""``create_app``: builds the monitor and serves it; the lifespan owns the libp2p runtime
and the refresh loop."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hmmm_monitor.api import dashboard, routes
from hmmm_monitor.bootstrap import BootstrapSource, WhooshBootstrapClient
from hmmm_monitor.connections import PeerConnector
from hmmm_monitor.consumer import MessageConsumer
from hmmm_monitor.metrics import MonitorMetrics
from hmmm_monitor.service import Monitor, Runtime
from hmmm_monitor.settings import Settings
from hmmm_monitor.store import MessageStore
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig

log = logging.getLogger(__name__)


def _attach_consumer(runtime: Runtime, consumer: MessageConsumer) -> None:
    """A runtime built by the caller (tests) may have been created without our callback."""
    node = getattr(runtime, "node", None)
    if isinstance(node, MeshNode):
        node.set_on_message(consumer)


def create_app(
    settings: Settings | None = None,
    *,
    runtime: MeshRuntime | Runtime | None = None,
    bootstrap_client: BootstrapSource | None = None,
) -> FastAPI:
    settings = settings or Settings()
    metrics = MonitorMetrics()
    store = MessageStore(settings.messages_keep)
    consumer = MessageConsumer(
        store,
        metrics,
        max_bytes=settings.max_message_bytes,
        log_to_stdout=settings.log_messages_to_stdout,
        invalid_log_interval_s=settings.invalid_log_interval_s,
    )
    if runtime is None:
        node_cfg = NodeConfig(
            listen_host=settings.p2p_host,
            port=settings.p2p_port,
            identity_path=settings.identity_path,
        )
        runtime = MeshRuntime(MeshNode(node_cfg, on_message=consumer))
    else:
        _attach_consumer(runtime, consumer)
    if bootstrap_client is None:
        bootstrap_client = WhooshBootstrapClient(
            settings.whoosh_url,
            static=settings.bootstrap_peers,
            cache_path=settings.bootstrap_cache_path,
            attempts=settings.bootstrap_attempts,
            backoff_initial_s=settings.bootstrap_backoff_initial_s,
            backoff_max_s=settings.bootstrap_backoff_max_s,
            timeout_s=settings.bootstrap_timeout_s,
            metrics=metrics,
        )
    policy = MultiaddrPolicy.from_settings(settings.overlay_cidrs, settings.allow_loopback)
    connector = PeerConnector(
        runtime,
        policy,
        concurrency=settings.dial_concurrency,
        backoff_initial_s=settings.dial_backoff_initial_s,
        backoff_max_s=settings.dial_backoff_max_s,
        metrics=metrics,
        forget_after_s=settings.forget_after_s,
    )
    monitor = Monitor(
        settings,
        runtime=runtime,
        bootstrap=bootstrap_client,
        connector=connector,
        store=store,
        consumer=consumer,
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await monitor.start()
        log.info("HMMM monitor %s started", monitor.runtime.peer_id)
        try:
            yield
        finally:
            await monitor.stop()

    app = FastAPI(title="HMMM monitor", version="0.1.0", lifespan=lifespan)
    app.state.monitor = monitor
    app.include_router(routes.router)
    app.include_router(dashboard.router)
    return app
