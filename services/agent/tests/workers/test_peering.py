"""The peering round against a fake node: a peer whose dial hangs never holds up the round
or the other dials, and a peer that keeps failing backs off alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from chorus_agent.domain.peers import PeerBook
from chorus_agent.metrics import AgentMetrics
from chorus_agent.workers.peering import Peering
from meshcommon.models import BootstrapPeer, PeerViewInfo
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.p2p.identity import load_or_create_key_pair, peer_id_of
from meshcommon.p2p.types import DialFailure, DialOutcome, NodeSnapshot
from meshcommon.peer.backoff import BackoffPolicy
from meshcommon.peer.bootstrap_client import BootstrapResult

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


IDS = sorted(peer_id_of(load_or_create_key_pair(None)) for _ in range(4))
ME, HOLE, BAD, GOOD = IDS[0], IDS[1], IDS[2], IDS[3]  # HOLE is my ring successor


def _peer(pid: str, i: int) -> BootstrapPeer:
    addr = f"/ip4/10.0.0.{i}/tcp/9000/p2p/{pid}"
    return BootstrapPeer(peer_id=pid, name=f"a{i}", priority=i, multiaddr=addr, multiaddrs=[addr])


class FakeNode:
    peer_id = ME

    def __init__(self) -> None:
        self.connected: set[str] = set()
        self.calls: list[str] = []
        self.release = asyncio.Event()
        self.dht: list[tuple[str, tuple[str, ...]]] = []

    async def dht_peers(self) -> list[tuple[str, tuple[str, ...]]]:
        return self.dht

    async def snapshot(self) -> NodeSnapshot:
        return NodeSnapshot(ME, 9000, tuple(sorted(self.connected)), ())

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome:
        self.calls.append(peer_id)
        if peer_id == HOLE:  # every address hangs until the node's per-peer deadline
            await self.release.wait()
            return DialOutcome(peer_id, False, failures=(DialFailure("", "deadline", "..."),))
        if peer_id == BAD:
            return DialOutcome(
                peer_id, False, failures=(DialFailure("", "connection_refused", "x"),)
            )
        self.connected.add(peer_id)
        return DialOutcome(peer_id, True, multiaddrs[0])


class FixedList:
    async def fetch(self, wait_s: float = 0.0) -> BootstrapResult:
        peers = (_peer(HOLE, 1), _peer(BAD, 2), _peer(GOOD, 3))
        return BootstrapResult(peers, "whoosh", datetime.now(UTC))

    async def aclose(self) -> None:
        return None


async def test_a_hanging_peer_costs_neither_the_round_nor_the_other_dials() -> None:
    node = FakeNode()
    peering = Peering(
        node,  # type: ignore[arg-type]
        FixedList(),
        AgentMetrics(),
        MultiaddrPolicy(),
        PeerBook(MultiaddrPolicy(), ME),
        target_peers=3,
        interval_s=10,
        backoff=BackoffPolicy(5.0, 60.0, jitter=lambda: 1.0),
    )
    started = time.monotonic()
    await peering.round()
    assert time.monotonic() - started < 3.0  # the settle time, not the hanging dial
    assert GOOD in node.connected and peering.first_connection.is_set()
    assert sorted(node.calls) == sorted([HOLE, BAD, GOOD])
    # Next round: the hanging dial is still in flight (not started twice), the refused
    # peer is backing off (not redialled), the connected one needs nothing.
    await peering.round()
    assert sorted(node.calls) == sorted([HOLE, BAD, GOOD])
    assert peering.backoff.failures(BAD) == 1 and not peering.backoff.ready(BAD)
    node.release.set()
    await peering.dials.settle(5)
    assert peering.backoff.failures(HOLE) == 1
    await peering.dials.aclose()


class ViewList:
    """WHOOSH's view for ME: it names GOOD as the ring successor (the ring of every listed
    agent, which ME does not know in full)."""

    async def fetch(self, wait_s: float = 0.0) -> BootstrapResult:
        view = PeerViewInfo(peer_id=ME, k=1, successor=GOOD, predecessor=BAD, total=50)
        peers = (_peer(GOOD, 3), _peer(BAD, 2))
        return BootstrapResult(peers, "whoosh", datetime.now(UTC), view=view)

    async def aclose(self) -> None:
        return None


async def test_the_ring_successor_comes_from_the_view() -> None:
    node = FakeNode()
    peering = Peering(
        node,  # type: ignore[arg-type]
        ViewList(),
        AgentMetrics(),
        MultiaddrPolicy(),
        PeerBook(MultiaddrPolicy(), ME),
        target_peers=1,
        interval_s=10,
    )
    await peering.round()
    await peering.dials.aclose()
    # Computed here, BAD would be the successor (the smaller ID); WHOOSH says GOOD.
    assert node.calls == [GOOD]


class EmptyList:
    async def fetch(self, wait_s: float = 0.0) -> BootstrapResult:
        return BootstrapResult((), "static", datetime.now(UTC))

    async def aclose(self) -> None:
        return None


async def test_peers_the_dht_found_are_learnt_and_dialled_within_the_budget() -> None:
    node = FakeNode()
    node.dht = [(pid, (f"/ip4/10.0.0.{i}/tcp/9000/p2p/{pid}",)) for i, pid in enumerate(IDS[2:])]
    book = PeerBook(MultiaddrPolicy(), ME)
    peering = Peering(
        node,  # type: ignore[arg-type]
        EmptyList(),
        AgentMetrics(),
        MultiaddrPolicy(),
        book,
        target_peers=1,
        interval_s=1.0,
    )
    await peering.round()
    await peering.dials.aclose()
    assert {p.peer_id for p in book.peers()} == {BAD, GOOD}
    assert book.discovered == {"dht": 2}
    assert len(node.calls) == 1  # target_peers=1: one dial, the ring successor
