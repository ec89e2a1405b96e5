"""Request dependencies: routes declare what they need with these ``Annotated`` types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hmmm_monitor.service import Monitor


def get_monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.service
    return monitor


async def get_synced_monitor(request: Request) -> Monitor:
    """The monitor with its view of the libp2p node refreshed for this request."""
    monitor = get_monitor(request)
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
