"""``MeshView``: what a node's libp2p layer knows, read from real py-libp2p hosts.

Two nodes on loopback: A subscribes to the mesh topics, B to one of them and to a
misspelt coordination topic. A's view must show B's announcement of the topic A does not
subscribe to, the GossipSub mesh on the shared topic, and the connection with its
direction, remote address, age and (after a ping) RTT.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

pytest.importorskip("libp2p")

from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig
from meshcommon.topics import COORDINATION, META_DISCUSSION
from meshcommon.waiting import wait_until_async

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"
TYPO = "chorus/coordination/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def pair() -> AsyncIterator[tuple[MeshRuntime, MeshRuntime, int]]:
    port_a = free_port()
    a = MeshRuntime(MeshNode(NodeConfig(HOST, port_a)))
    b = MeshRuntime(MeshNode(NodeConfig(HOST, free_port(), topics=(TYPO, META_DISCUSSION))))
    await a.start()
    await b.start()
    try:
        yield a, b, port_a
    finally:
        await b.stop()
        await a.stop()


async def test_view_shows_announcements_mesh_and_connections(
    pair: tuple[MeshRuntime, MeshRuntime, int],
) -> None:
    a, b, port_a = pair
    outcome = await b.connect(a.peer_id, [f"/ip4/{HOST}/tcp/{port_a}/p2p/{a.peer_id}"])
    assert outcome.connected, outcome

    async def meshed() -> bool:
        view = await a.mesh_view()
        shared = {t.topic: t for t in view.topics}[META_DISCUSSION]
        return b.peer_id in shared.mesh

    await wait_until_async(meshed, within_s=15, what="B in A's mesh on the shared topic")
    rtt = await a.ping(b.peer_id)

    view_a = await a.mesh_view()
    topics = {t.topic: t for t in view_a.topics}
    # B's misspelt topic is listed although A does not subscribe to it.
    assert topics[TYPO].subscribed is False
    assert topics[TYPO].subscribers == (b.peer_id,)
    assert topics[COORDINATION].subscribed is True and topics[COORDINATION].subscribers == ()
    assert view_a.subscriptions() == {b.peer_id: (TYPO, META_DISCUSSION)}

    (conn,) = view_a.connections
    assert conn.peer_id == b.peer_id
    assert conn.direction == "inbound"  # B dialled A
    assert conn.remote_addr is not None and conn.remote_addr.startswith(f"/ip4/{HOST}/tcp/")
    assert conn.opened_at is not None and conn.opened_at <= view_a.taken_at
    assert conn.rtt_ms == pytest.approx(rtt)

    doc = view_a.to_dict()
    assert doc["subscriptions"] == {b.peer_id: [TYPO, META_DISCUSSION]}
    assert doc["connections"][0]["direction"] == "inbound"
    assert doc["connections"][0]["rtt_ms"] is not None

    (conn_b,) = (await b.mesh_view()).connections
    assert conn_b.direction == "outbound" and conn_b.rtt_ms is None  # B never pinged
    assert conn_b.remote_addr == f"/ip4/{HOST}/tcp/{port_a}"
