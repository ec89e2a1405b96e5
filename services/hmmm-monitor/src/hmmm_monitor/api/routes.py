"""JSON API and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hmmm_monitor.service import Monitor
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.netinfo import listen_ips

router = APIRouter()


def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


@router.get("/api/health")
async def health(request: Request) -> dict[str, Any]:
    m = _monitor(request)
    snap = await m.snapshot()
    cov = m.coverage()
    s = m.settings
    # Report the addresses an agent could dial us on (same policy the agents use).
    policy = MultiaddrPolicy.from_settings(s.overlay_cidrs, s.allow_loopback)
    multiaddrs = policy.advertise(listen_ips(s.p2p_host), s.p2p_port, m.runtime.peer_id).multiaddrs
    problems = []
    if snap is None:
        problems.append("libp2p node not running")
    if cov["expected"] == 0:
        problems.append("no expected peers (bootstrap empty)")
    elif cov["heard"] == 0:
        problems.append("no expected peer heard within the window")
    return {
        "status": "ok" if not problems else "degraded",
        "problems": problems,
        "peer_id": m.runtime.peer_id,
        "multiaddrs": multiaddrs,
        "connected_peers": len(snap.connected_peers) if snap else 0,
        "topics": sorted(snap.topics) if snap else [],
        "uptime_seconds": round(time.time() - m.started_at, 1),
        "bootstrap": m.bootstrap_result.info(),
        "coverage": {k: cov[k] for k in ("expected", "connected", "heard")},
        "messages_received": m.store.total,
    }


@router.get("/api/v1/peers")
async def peers(request: Request) -> dict[str, Any]:
    m = _monitor(request)
    await m.snapshot()
    rows = m.peers()
    return {"count": len(rows), "peers": rows, "bootstrap": m.bootstrap_result.info()}


@router.get("/api/v1/messages")
async def messages(
    request: Request,
    topic: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    type_: Annotated[str | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> dict[str, Any]:
    m = _monitor(request)
    found = m.store.recent(topic=topic, sender=from_, type_=type_, limit=limit)
    return {
        "count": len(found),
        "total_received": m.store.total,
        "messages": [msg.to_dict() for msg in found],
    }


@router.get("/api/v1/coverage")
async def coverage(request: Request) -> dict[str, Any]:
    m = _monitor(request)
    await m.snapshot()
    return m.coverage()


@router.get("/api/v1/topology")
async def topology(request: Request) -> dict[str, Any]:
    m = _monitor(request)
    await m.snapshot()
    return m.topology()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    m = _monitor(request)
    await m.snapshot()  # refreshes gauges and the dropped counter
    return Response(generate_latest(m.metrics.registry), media_type=CONTENT_TYPE_LATEST)
