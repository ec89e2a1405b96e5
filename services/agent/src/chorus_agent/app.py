"""The CHORUS agent: a libp2p node with GossipSub and a small HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.metadata import version as package_version

import httpx
from fastapi import FastAPI

from chorus_agent.api.routes import router
from chorus_agent.availability import WorkState
from chorus_agent.broadcaster import Broadcaster
from chorus_agent.consumer import GossipConsumer
from chorus_agent.health import advertised_multiaddrs
from chorus_agent.metrics import AgentMetrics
from chorus_agent.peering import PeerBook, Peering
from chorus_agent.settings import Settings
from meshcommon.multiaddr_policy import MultiaddrPolicy, parse_networks
from meshcommon.netinfo import interface_networks
from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig

VERSION = package_version("chorus-agent")


def build_policy(settings: Settings) -> MultiaddrPolicy:
    nets = parse_networks(settings.overlay_cidrs)
    if settings.overlay_interface:
        nets += interface_networks(settings.overlay_interface)
    return MultiaddrPolicy(
        nets,
        allow_loopback=settings.allow_loopback,
        strict_overlay=settings.overlay_only and bool(nets),
    )


@dataclass
class Agent:
    """Everything one agent process holds; routes read it from ``app.state.agent``."""

    settings: Settings
    runtime: MeshRuntime
    metrics: AgentMetrics
    policy: MultiaddrPolicy
    work: WorkState
    book: PeerBook
    version: str = VERSION
    started: float = field(default_factory=time.monotonic)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = AgentMetrics()
    policy = build_policy(settings)
    book = PeerBook(policy)
    consumer = GossipConsumer(metrics, settings.max_message_bytes, learn=book.learn)
    node = MeshNode(
        NodeConfig(
            listen_host=settings.p2p_host,
            port=settings.p2p_port,
            identity_path=settings.identity_path or None,
        ),
        on_message=consumer,
    )
    agent = Agent(
        settings,
        MeshRuntime(node),
        metrics,
        policy,
        WorkState(max_tasks=settings.max_tasks),
        book,
    )
    book.self_id = node.peer_id

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await agent.runtime.start()
        async with httpx.AsyncClient(timeout=settings.bootstrap_timeout_s) as http:
            peering = Peering(
                agent.runtime,
                http,
                metrics,
                agent.policy,
                book,
                whoosh_url=settings.whoosh_url,
                static=settings.bootstrap_peers,
                target_peers=settings.target_peers,
                interval_s=settings.bootstrap_interval_s,
            )
            broadcaster = Broadcaster(
                agent.runtime,
                agent.work,
                metrics,
                name=settings.name,
                version=agent.version,
                interval_s=settings.broadcast_interval_s,
                first_connection=peering.first_connection,
                multiaddrs=lambda: (
                    advertised_multiaddrs(settings, policy, agent.runtime.peer_id).multiaddrs
                ),
            )
            tasks = [
                asyncio.create_task(peering.run_forever(), name="peering"),
                asyncio.create_task(broadcaster.run_forever(), name="broadcaster"),
            ]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await agent.runtime.stop()

    app = FastAPI(title="CHORUS agent", version=VERSION, lifespan=lifespan)
    app.state.agent = agent
    app.include_router(router)
    return app
