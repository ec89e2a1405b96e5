"""JSON API and Prometheus metrics: each route composes views the ``Monitor`` builds."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from hmmm_monitor.api.deps import MeshedMonitor, MonitorDep, SyncedMonitor
from hmmm_monitor.api.schemas import MonitorHealth, PeersReport
from meshcommon.health import HealthFields
from meshcommon.models import PnetRefusalRecord
from meshcommon.serve import (
    METRICS_RESPONSES,
    health_response,
    health_responses,
    metrics_response,
)

router = APIRouter()


@router.get("/api/health", response_model=MonitorHealth, responses=health_responses(MonitorHealth))
async def health(m: SyncedMonitor) -> JSONResponse:
    """ok, degraded (200: no peers, none heard, an old bootstrap list...) or failing (503:
    the libp2p node is gone or the refresh loop is stuck; a restart is the cure)."""
    verdict = m.health()
    cov = m.coverage()
    node = m.node
    doc = MonitorHealth(
        **HealthFields.of(verdict),
        version=m.version,
        peer_id=m.peer_id,
        multiaddrs=m.advertised().multiaddrs,
        connected_peers=len(node.connected_peers) if node else 0,
        topics=sorted(node.topics) if node else [],
        uptime_seconds=round(time.time() - m.started_at, 1),
        bootstrap=m.bootstrap_result.info(),
        coverage={k: cov[k] for k in ("expected", "connected", "heard")},
        messages_received=m.messages_received,
        # From the settings, so it is right even while the node does not answer.
        private_network=bool(m.settings.pnet_key_file),
        pnet_refused=node.pnet_refused if node else {},
        pnet_refused_recent=[PnetRefusalRecord(**vars(r)) for r in node.pnet_recent]
        if node
        else [],
    )
    return health_response(doc, verdict.http_status)


@router.get("/api/v1/peers", response_model=PeersReport)
async def peers(m: SyncedMonitor) -> dict[str, Any]:
    rows = m.peers()
    return {
        "count": len(rows),
        "peers": rows,
        "bootstrap": m.bootstrap_result.info(),
        "impostors": m.impostors(),
    }


@router.get("/api/v1/messages")
async def messages(
    m: MonitorDep,
    topic: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    type_: Annotated[str | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> dict[str, Any]:
    found = m.recent_messages(topic=topic, sender=from_, type_=type_, limit=limit)
    return {"count": len(found), "total_received": m.messages_received, "messages": found}


@router.get("/api/v1/coverage")
async def coverage(m: SyncedMonitor) -> dict[str, Any]:
    return m.coverage()


@router.get("/api/v1/topology")
async def topology(m: MeshedMonitor) -> dict[str, Any]:
    return m.topology()


@router.get("/api/v1/mesh")
async def mesh(m: MeshedMonitor) -> dict[str, Any]:
    """The monitor's libp2p view: per topic the GossipSub mesh, fanout and every peer's
    announced subscriptions; per connection direction, address, age and ping RTT."""
    view = m.mesh
    if view is None:
        raise HTTPException(503, "libp2p node not running")
    return view.to_dict()


@router.get("/api/v1/diagnosis")
async def diagnosis(m: MeshedMonitor) -> dict[str, Any]:
    """Every fault the monitor can see, with its evidence and fix (see the doctor)."""
    return m.diagnosis().model_dump(mode="json")


@router.get("/metrics", response_class=PlainTextResponse, responses=METRICS_RESPONSES)
async def metrics(m: SyncedMonitor) -> Response:
    return metrics_response(m.metrics.registry)
