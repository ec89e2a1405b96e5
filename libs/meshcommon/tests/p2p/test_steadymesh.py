"""GossipSub's heartbeat and mesh as configured (the ``steadymesh`` override): real nodes on
loopback with scoring on (validation), as agents run. Upstream's adaptive gossip, once it
has rated the network's health (every 30 s), stretches the 1 s heartbeat to 30-60 s and
raises the mesh bounds; its opportunistic grafting adds peers at every heartbeat when
scores tie. With the override the heartbeat and bounds stay, and opportunistic grafting
happens as GossipSub v1.1 says."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

pytest.importorskip("libp2p")

from libp2p.peer.id import ID

from meshcommon.p2p.pubsub import OPPORTUNISTIC_GRAFT_TICKS
from meshcommon.p2p.types import ALL_OVERRIDES, P2POverrides
from meshcommon.topics import COORDINATION

from .conftest import Peer, wait_for

pytestmark = pytest.mark.anyio

WITHOUT = P2POverrides.parse("all,-steadymesh")


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@asynccontextmanager
async def _star(leaves: int, overrides: P2POverrides) -> AsyncIterator[tuple[Peer, list[Peer]]]:
    """A hub connected to ``leaves`` nodes, every node validating (so scoring is on)."""
    hub = Peer(overrides, validate_messages=True)
    others = [Peer(overrides, validate_messages=True) for _ in range(leaves)]
    async with trio.open_nursery() as nursery:
        for p in (hub, *others):
            await nursery.start(p.node.serve)
        for p in others:
            assert (await hub.node.connect(p.node.peer_id, [p.addr])).connected

        async def meshed() -> bool:
            mesh = (await hub.node.snapshot()).mesh_peers.get(COORDINATION, ())
            subscribed = _gs(hub).pubsub.peer_topics.get(COORDINATION, ())
            return len(mesh) >= 1 and len(subscribed) == leaves

        await wait_for(meshed, "every leaf subscribed, the hub with a mesh")
        yield hub, others
        nursery.cancel_scope.cancel()


def _gs(peer: Peer) -> Any:
    gs = peer.node._gossipsub
    assert gs is not None
    return gs


async def _rate_health_now(peer: Peer) -> None:
    """Make the next heartbeat rate the network's health (upstream: every 30 s) and wait
    for two heartbeats to have run since (with the override) or for the rating (upstream,
    whose next heartbeat may then be 30 s away)."""
    gs = _gs(peer)
    beats = [0]
    mesh_heartbeat = gs.mesh_heartbeat

    def counted() -> Any:
        beats[0] += 1
        return mesh_heartbeat()

    gs.mesh_heartbeat = counted
    gs.last_health_update -= 31
    due = gs.last_health_update

    async def rated_or_two_heartbeats() -> bool:
        # The rating and the adaptation run without a schedule point in between.
        return gs.last_health_update != due or beats[0] >= 2

    await wait_for(rated_or_two_heartbeats, "a health rating or two heartbeats")


async def test_heartbeat_and_bounds_stay_as_configured() -> None:
    async with _star(2, ALL_OVERRIDES) as (hub, _):
        gs = _gs(hub)
        await _rate_health_now(hub)
        assert gs.heartbeat_interval == hub.node.config.heartbeat_interval == 1
        assert (gs.adaptive_degree_low, gs.adaptive_degree_high) == (
            hub.node.config.degree_low,
            hub.node.config.degree_high,
        )
        assert gs.adaptive_gossip_enabled is False


async def test_upstream_stretches_the_heartbeat() -> None:
    """What the override is for: a small mesh with scores that are never positive is
    rated poor, and upstream's heartbeat becomes 30 s or more."""
    async with _star(2, WITHOUT) as (hub, _):
        gs = _gs(hub)
        await _rate_health_now(hub)
        assert gs.network_health_score < 0.7
        assert gs.heartbeat_interval >= 30
        assert gs.adaptive_degree_low > hub.node.config.degree_low


def _only_in_mesh(hub: Peer, keep: Peer) -> ID:
    gs = _gs(hub)
    kept = ID.from_base58(keep.node.peer_id)
    gs.mesh[COORDINATION] = {kept}
    return kept


async def test_no_opportunistic_graft_while_the_mesh_scores_well() -> None:
    async with _star(3, ALL_OVERRIDES) as (hub, others):
        gs = _gs(hub)
        _only_in_mesh(hub, others[0])
        grafts: defaultdict[ID, list[str]] = defaultdict(list)
        for _ in range(2 * OPPORTUNISTIC_GRAFT_TICKS):
            assert gs._perform_opportunistic_grafting(COORDINATION, grafts) == 0
        assert not grafts and len(gs.mesh[COORDINATION]) == 1


async def test_upstream_grafts_at_every_heartbeat_when_scores_tie() -> None:
    async with _star(3, WITHOUT) as (hub, others):
        gs = _gs(hub)
        _only_in_mesh(hub, others[0])
        grafts: defaultdict[ID, list[str]] = defaultdict(list)
        assert gs._perform_opportunistic_grafting(COORDINATION, grafts) > 0


async def test_opportunistic_graft_every_60_heartbeats_below_the_threshold() -> None:
    async with _star(3, ALL_OVERRIDES) as (hub, others):
        gs = _gs(hub)
        bad = _only_in_mesh(hub, others[0])
        for _ in range(3):  # the mesh's only peer sent invalid messages: median < 0
            gs.scorer.on_invalid_message(bad, COORDINATION)
        grafts: defaultdict[ID, list[str]] = defaultdict(list)
        done = [
            gs._perform_opportunistic_grafting(COORDINATION, grafts)
            for _ in range(OPPORTUNISTIC_GRAFT_TICKS)
        ]
        assert done[:-1] == [0] * (OPPORTUNISTIC_GRAFT_TICKS - 1)
        assert done[-1] == 2
        better = {ID.from_base58(p.node.peer_id) for p in others[1:]}
        assert set(grafts) == better and all(v == [COORDINATION] for v in grafts.values())
        assert gs.mesh[COORDINATION] == better | {bad}
