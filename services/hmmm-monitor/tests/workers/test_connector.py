"""The connector against a fake dialer: who is dialled when, backoff, reconnects, how a
peer that left the bootstrap list is kept, then forgotten, and how one that left on purpose
is dropped at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from hmmm_monitor.domain.coverage import build_coverage
from hmmm_monitor.domain.expected_peers import ExpectedPeers
from hmmm_monitor.domain.store import SenderStats
from hmmm_monitor.workers.connector import PeerConnector
from meshcommon.models import BootstrapPeer, LeftPeer
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.p2p.types import DialFailure, DialOutcome, NodeSnapshot

from ..conftest import peer

# Real (valid) peer IDs: the policy parses the /p2p/ component.
P1, P2, P3 = (
    "12D3KooWLdRq9rGCYQMB7mpbAQuC2ZB1QxqC9LHXAmJ9FCJdwSKE",
    "12D3KooWCJfubkok7pXb8sdzz5NUmBQG6RxYG5su6cTMiyRVxbD3",
    "12D3KooWDMKk16NJMyzE9iFrZaun8TZn4y5Ajh8TBCFS4CCj5vWG",
)


class FakeDialer:
    def __init__(self) -> None:
        self.connected: set[str] = set()
        self.fail: dict[str, str] = {}
        self.calls: list[tuple[str, list[str]]] = []

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome:
        self.calls.append((peer_id, list(multiaddrs)))
        if peer_id in self.fail:
            f = DialFailure(multiaddrs[-1], self.fail[peer_id], "boom")
            return DialOutcome(peer_id, False, failures=(f,), elapsed_ms=3)
        self.connected.add(peer_id)
        return DialOutcome(peer_id, True, multiaddrs[0], elapsed_ms=7.25)

    async def snapshot(self) -> NodeSnapshot:
        return NodeSnapshot("me", 9000, tuple(sorted(self.connected)), ())


pytestmark = pytest.mark.anyio


async def test_connector_dials_backs_off_and_counts_reconnects() -> None:
    now = [1000.0]
    dialer = FakeDialer()
    dialer.fail[P2] = "connection_refused"
    expected = ExpectedPeers(backoff_initial_s=10, backoff_max_s=40, clock=lambda: now[0])
    conn = PeerConnector(dialer, MultiaddrPolicy(), expected)
    expected.set_expected(
        [
            peer(P1, "/ip4/127.0.0.1/tcp/1", "not-a-multiaddr", "/ip4/10.0.0.1/tcp/9000"),
            peer(P2, "/ip4/10.0.0.2/tcp/9000"),
            peer(P3, "/ip4/127.0.0.1/tcp/9000"),  # loopback only: nothing to dial
        ]
    )
    await conn.run_round()
    s1, s2, s3 = (expected.peers[p] for p in (P1, P2, P3))
    assert s1.connected and s1.dial_latency_ms == round(7.25, 1)
    assert dialer.calls[0] == (P1, [f"/ip4/10.0.0.1/tcp/9000/p2p/{P1}"])
    assert {r["reason"] for r in s1.skipped_multiaddrs} == {"loopback", "invalid_multiaddr"}
    assert not s2.connected and s2.reason == "connection_refused" and s2.dial_attempts == 1
    assert s3.reason == "no_dialable_multiaddr" and "loopback" in (s3.last_error_detail or "")
    # Backoff: not redialled until due, and the delay doubles.
    await conn.run_round()
    assert s2.dial_attempts == 1
    now[0] += 13
    await conn.run_round()
    assert s2.dial_attempts == 2 and 16 <= s2.next_dial_at - now[0] <= 24
    # An agent restart: the connection disappears, the next round redials and counts it.
    dialer.connected.discard(P1)
    await conn.run_round()
    assert s1.connected and s1.reconnects == 1
    # New addresses for a failing peer skip the remaining backoff.
    del dialer.fail[P2]
    expected.set_expected([peer(P1, "/ip4/10.0.0.1/tcp/9000"), peer(P2, "/ip4/10.0.0.9/tcp/9000")])
    await conn.run_round()
    assert expected.peers[P2].connected and set(expected.peers) == {P1, P2}


def _stats(pid: str, last: float, count: int = 1) -> SenderStats:
    return SenderStats(pid, last, last, count)


async def _a2_gone_after_connecting(
    forget_after_s: float,
) -> tuple[list[float], FakeDialer, ExpectedPeers, PeerConnector, BootstrapPeer, BootstrapPeer]:
    """Agents a1 and a2 expected and connected; then a2 is gone (connection refused) and
    two seconds pass. Returns the clock, the dialer, the expected peers, the connector and
    both agents."""
    now = [1000.0]
    dialer = FakeDialer()
    expected = ExpectedPeers(
        backoff_initial_s=1, clock=lambda: now[0], forget_after_s=forget_after_s
    )
    conn = PeerConnector(dialer, MultiaddrPolicy(), expected)
    p1 = peer(P1, "/ip4/10.0.0.1/tcp/9000", name="a1")
    p2 = peer(P2, "/ip4/10.0.0.2/tcp/9000", name="a2")
    expected.set_expected([p1, p2])
    await conn.run_round()
    assert expected.peers[P2].connected
    dialer.connected.discard(P2)
    dialer.fail[P2] = "connection_refused"
    now[0] += 2
    return now, dialer, expected, conn, p1, p2


async def test_peer_that_leaves_the_bootstrap_list_stays_expected_then_is_forgotten() -> None:
    """WHOOSH drops an agent from its list as soon as a health poll fails (crash, restart).
    The monitor keeps expecting it: coverage names it missing instead of shrinking, it is
    redialled, and when it is back its reconnect is counted. After forget_after_s: gone."""
    now, dialer, expected, conn, p1, p2 = await _a2_gone_after_connecting(forget_after_s=60)
    # a2 crashed; WHOOSH's next list no longer has it.
    expected.set_expected([p1])
    await conn.run_round()
    s2 = expected.peers[P2]
    assert not s2.connected and not s2.in_bootstrap and s2.left_bootstrap_at == 1002
    assert s2.to_dict()["in_bootstrap"] is False
    cov = build_coverage(
        expected=expected.peers,
        senders={P1: _stats(P1, 1001), P2: _stats(P2, 990)},
        now=now[0],
        heard_window_s=3,
        bootstrap={},
        dropped={},
        rejected={},
    )
    assert (cov["expected"], cov["heard"]) == (2, 1)
    assert [m["name"] for m in cov["missing"]] == ["a2"]
    # It comes back (same peer ID) before it is forgotten and WHOOSH lists it again: it is
    # redialled at once (not after the backoff), its history kept, the reconnect counted.
    del dialer.fail[P2]
    now[0] += 0.5
    assert s2.next_dial_at > now[0]
    expected.set_expected([p1, p2])
    await conn.run_round()
    assert expected.peers[P2] is s2 and s2.connected and s2.reconnects == 1 and s2.in_bootstrap
    # Gone for good: forgotten forget_after_s after it left the list.
    expected.set_expected([p1])
    now[0] += 59
    expected.set_expected([p1])
    assert P2 in expected.peers
    now[0] += 2
    expected.set_expected([p1])
    assert set(expected.peers) == {P1}


async def test_peer_that_left_on_purpose_is_not_expected_and_not_redialled() -> None:
    """Scaled down (or drained, or updated away): WHOOSH lists it under ``left``. The
    monitor stops expecting it at once, never dials it again, and coverage lists it as
    left with the reason, neither missing nor unexpected while its last messages are
    still within the window."""
    now, dialer, expected, conn, p1, p2 = await _a2_gone_after_connecting(forget_after_s=300)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    gone = LeftPeer(peer_id=P2, name="a2", reason="scaled_down", at=at)
    expected.set_expected([p1], [gone])
    calls = len(dialer.calls)
    now[0] += 60  # long past any backoff
    await conn.run_round()
    assert set(expected.peers) == {P1} and len(dialer.calls) == calls
    assert expected.left == {P2: gone}
    cov = build_coverage(
        expected=expected.peers,
        left=expected.left,
        senders={P1: _stats(P1, now[0] - 1), P2: _stats(P2, now[0] - 1)},
        now=now[0],
        heard_window_s=30,
        bootstrap={},
        dropped={},
        rejected={},
    )
    assert (cov["expected"], cov["connected"], cov["heard"], cov["missing"]) == (1, 1, 1, [])
    assert cov["unexpected"] == []
    assert cov["left"] == [
        {"peer_id": P2, "name": "a2", "reason": "scaled_down", "at": "2025-01-01T00:00:00+00:00"}
    ]
    # Back in WHOOSH's list (a slot's identity in its replacement task): expected again.
    expected.set_expected([p1, p2], [gone])
    assert set(expected.peers) == {P1, P2} and expected.left == {}


class ConflictDialer(FakeDialer):
    """The real P1 is at 10.0.0.1; 10.0.0.66 claims P1 but holds another key (P3's)."""

    def __init__(self) -> None:
        super().__init__()
        self.proofs: list[str] = []

    async def prove_key(self, peer_id: str, multiaddr: str):
        from meshcommon.p2p.types import KeyProof

        self.proofs.append(multiaddr)
        if "10.0.0.66" in multiaddr:
            detail = f"remote_peer={peer_id}, remote_peer_id_from_pubkey={P3}"
            return KeyProof(peer_id, multiaddr, False, "peer_id_mismatch", detail, P3)
        return KeyProof(peer_id, multiaddr, True)

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome:
        assert not any("10.0.0.66" in a for a in multiaddrs), "dialled a proven impostor"
        return await super().connect(peer_id, multiaddrs)


async def test_claimants_of_a_peer_id_are_proven_and_the_impostor_is_never_dialled() -> None:
    from meshcommon.models import BootstrapPeer, Claimant

    real = f"/ip4/10.0.0.1/tcp/9000/p2p/{P1}"
    fake = f"/ip4/10.0.0.66/tcp/9000/p2p/{P1}"
    entry = BootstrapPeer(
        peer_id=P1,
        name="agent-01",
        priority=1,
        multiaddr=fake,  # the impostor's address even comes first
        multiaddrs=[fake, real],
        conflict=True,
        claimants=[
            Claimant(name="mallory", url="http://10.0.0.66:8080", multiaddrs=[fake]),
            Claimant(name="agent-01", url="http://10.0.0.1:8080", multiaddrs=[real]),
        ],
    )
    dialer = ConflictDialer()
    expected = ExpectedPeers()
    conn = PeerConnector(dialer, MultiaddrPolicy(), expected)
    expected.set_expected([entry])
    await conn.run_round()
    s = expected.peers[P1]
    assert s.connected and s.connected_multiaddr == real
    mallory, genuine = s.claimants
    assert (mallory.verdict, mallory.reason) == ("impostor", "peer_id_mismatch")
    assert P3 in (mallory.evidence or "") and mallory.proven_multiaddr == fake
    assert genuine.verdict == "holds_key"
    assert [c.name for c in s.impostors()] == ["mallory"]
    # What was proven survives the next list, while the claimants stay the same.
    expected.set_expected([entry])
    assert expected.peers[P1].claimants[0].verdict == "impostor"


async def test_a_hanging_dial_never_holds_up_the_round_or_the_other_peers() -> None:
    import asyncio
    import time

    class HangingDialer(FakeDialer):
        release = asyncio.Event()
        hanging_calls = 0

        async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome:
            if peer_id == P2:
                self.hanging_calls += 1
                await self.release.wait()
            return await super().connect(peer_id, multiaddrs)

    dialer = HangingDialer()
    expected = ExpectedPeers()
    conn = PeerConnector(dialer, MultiaddrPolicy(), expected, settle_s=0.3)
    expected.set_expected([peer(P1, "/ip4/10.0.0.1/tcp/9000"), peer(P2, "/ip4/10.0.0.2/tcp/9000")])
    started = time.monotonic()
    await conn.run_round()
    assert time.monotonic() - started < 2.0
    assert expected.peers[P1].connected and expected.peers[P2].dialling
    # Not due while in flight: the refresh loop does not spin on it, nor dial it twice.
    assert expected.due() == [] and expected.next_dial_in() is None
    await conn.run_round()
    assert dialer.hanging_calls == 1
    dialer.release.set()
    await conn.dials.settle(5)
    assert expected.peers[P2].connected and not expected.peers[P2].dialling
    await conn.aclose()
