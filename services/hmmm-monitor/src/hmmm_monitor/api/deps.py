"""Request dependencies: routes declare what they need with these ``Annotated`` types
(``async def``, so that FastAPI calls them on the event loop instead of hopping to its
thread pool for each request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hmmm_monitor.service import Monitor


async def get_monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.service
    return monitor


async def get_synced_monitor(request: Request) -> Monitor:
    """The monitor with its view of the libp2p node refreshed for this request."""
    monitor = await get_monitor(request)
    await monitor.sync_node_state()
    return monitor


async def get_meshed_monitor(request: Request) -> Monitor:
    """The monitor with its node state and its libp2p mesh view read for this request."""
    monitor = await get_synced_monitor(request)
    await monitor.read_mesh()
    return monitor


MonitorDep = Annotated[Monitor, Depends(get_monitor)]
SyncedMonitor = Annotated[Monitor, Depends(get_synced_monitor)]
MeshedMonitor = Annotated[Monitor, Depends(get_meshed_monitor)]
