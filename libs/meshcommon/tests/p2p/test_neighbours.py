"""The neighbours report read from real py-libp2p hosts: A sees B's misspelt subscription,
B's agent version (identify), the link's RTT and loss from A's pings, and the bytes and
messages that passed each way; what is kept per peer goes when the connection closes."""

from __future__ import annotations

import pytest
import trio

pytest.importorskip("libp2p")

from libp2p.identity.identify.identify import AGENT_VERSION

from meshcommon.neighbours import parse_report
from meshcommon.p2p.node import MeshNode
from meshcommon.p2p.types import NodeConfig
from meshcommon.topics import ALL_TOPICS, META_DISCUSSION
from meshcommon.waiting import wait_until_async

from .conftest import HOST, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # the nodes run in this test's trio loop: no thread, no portal


TYPO = "chorus/coordination/v1"


async def test_report_names_topics_identity_link_and_traffic() -> None:
    port_a = free_port()
    a = MeshNode(NodeConfig(HOST, port_a))
    b = MeshNode(NodeConfig(HOST, free_port(), topics=(TYPO, META_DISCUSSION)))
    async with trio.open_nursery() as nursery:
        await nursery.start(a.serve)
        await nursery.start(b.serve)
        assert (await b.connect(a.peer_id, [f"/ip4/{HOST}/tcp/{port_a}/p2p/{a.peer_id}"])).connected
        await _check(a, b)
        nursery.cancel_scope.cancel()


async def _check(a: MeshNode, b: MeshNode) -> None:
    async def typo_announced() -> bool:
        report = await a.neighbours(ALL_TOPICS)
        return bool(report) and TYPO in report[0].topics

    await wait_until_async(typo_announced, within_s=15, what="B's subscriptions at A")
    await a.neighbours(ALL_TOPICS)  # the rates below are over the time since this one
    for _ in range(3):
        await a.ping(b.peer_id)
    for i in range(5):
        await b.publish(META_DISCUSSION, f'{{"type":"x","i":{i}}}'.encode())

    async def five_in() -> bool:
        return sum(a.counters.messages_in.values()) >= 5

    await wait_until_async(five_in, within_s=15, what="B's 5 messages counted at A")
    assert await a.identify_neighbours() == 1
    assert await a.identify_neighbours() == 0  # asked once per connection
    (n,) = await a.neighbours(ALL_TOPICS)
    assert n.peer_id == b.peer_id
    assert n.topics[0] == TYPO  # the unknown topic first
    assert n.agent_version == AGENT_VERSION
    assert n.implementation == "py-libp2p"
    assert n.protocols == ()  # same build as the reporter: left out
    assert n.pings == 3 and n.loss == 0 and n.rtt_ms is not None and n.rtt_ms > 0
    assert n.uptime_s is not None and n.uptime_s >= 0
    assert n.messages_in_per_s is not None and n.messages_in_per_s > 0
    assert n.bytes_in_per_s is not None and n.bytes_out_per_s is not None
    # The wire form goes through the monitor's validation unchanged.
    (back,) = parse_report([n.to_wire()])
    assert back.peer_id == n.peer_id and back.topics == n.topics
    assert back.agent_version == n.agent_version

    await a.disconnect(b.peer_id)

    async def forgotten() -> bool:
        await a.identify_neighbours()
        return not a.counters.messages_in and not (await a.identities())

    await wait_until_async(forgotten, within_s=15, what="B forgotten after it left")
    assert await a.neighbours(ALL_TOPICS) == ()
