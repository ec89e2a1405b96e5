"""Pure domain: connector state machine (fake dialer), coverage and topology."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hmmm_monitor.connections import PeerConnector
from hmmm_monitor.coverage import build_coverage
from hmmm_monitor.store import AvailabilityReport, SenderStats
from hmmm_monitor.topology import build_topology
from meshcommon.models import AvailabilityMessage
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.p2p.node import DialFailure, DialOutcome, NodeSnapshot

from .conftest import peer

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
    conn = PeerConnector(
        dialer, MultiaddrPolicy(), backoff_initial_s=10, backoff_max_s=40, clock=lambda: now[0]
    )
    conn.set_expected(
        [
            peer(P1, "/ip4/127.0.0.1/tcp/1", "not-a-multiaddr", "/ip4/10.0.0.1/tcp/9000"),
            peer(P2, "/ip4/10.0.0.2/tcp/9000"),
            peer(P3, "/ip4/127.0.0.1/tcp/9000"),  # loopback only: nothing to dial
        ]
    )
    await conn.run_round()
    s1, s2, s3 = (conn.peers[p] for p in (P1, P2, P3))
    assert (s1.connected and s1.dial_latency_ms == 7.2) or s1.dial_latency_ms == 7.3
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
    conn.set_expected([peer(P1, "/ip4/10.0.0.1/tcp/9000"), peer(P2, "/ip4/10.0.0.9/tcp/9000")])
    await conn.run_round()
    assert conn.peers[P2].connected and set(conn.peers) == {P1, P2}


def _stats(pid: str, last: float, count: int = 1) -> SenderStats:
    return SenderStats(pid, last, last, count)


def test_coverage_counts_expected_connected_heard_and_names_the_missing() -> None:
    conn = PeerConnector(FakeDialer(), MultiaddrPolicy())
    conn.set_expected([peer(P1, "/ip4/10.0.0.1/tcp/1", name="a1"), peer(P2, name="a2")])
    conn.peers[P1].connected = True
    conn.peers[P2].last_error_reason = "peer_id_mismatch"
    senders = {P1: _stats(P1, 990), P2: _stats(P2, 900), "12D3KooWStranger": _stats("x", 995)}
    cov = build_coverage(
        expected=conn.peers,
        senders=senders,
        now=1000,
        heard_window_s=45,
        bootstrap={"source": "cache"},
        dropped={"t": 2},
        outbound_dropped={"queue_full": 7},
        rejected={"oversized": 1},
    )
    assert (cov["expected"], cov["connected"], cov["heard"]) == (2, 1, 1)
    assert cov["missing"] == [
        {
            "peer_id": P2,
            "name": "a2",
            "connected": False,
            "last_heard": cov["missing"][0]["last_heard"],
        }
    ]
    assert cov["missing"][0]["last_heard"].startswith("1970-01-01T00:15:00")
    assert cov["not_connected"][0]["reason"] == "peer_id_mismatch"
    assert cov["unexpected"] == ["12D3KooWStranger"]
    assert cov["dropped"] == {
        "queue_full": 2,
        "rejected": {"oversized": 1},
        "outbound": {"queue_full": 7},
    }


def _avail(pid: str, peers: list[str], at: float = 1000) -> AvailabilityReport:
    msg = AvailabilityMessage(
        node_id=pid,
        available_for_work=True,
        current_tasks=0,
        max_tasks=1,
        last_activity="2025-01-01T00:00:00Z",
        status="ready",
        peers=peers,
    )
    return AvailabilityReport(pid, msg, at)


def test_topology_detects_a_partition_among_agents() -> None:
    mon = "12D3KooWMonitor"
    kwargs = dict(
        monitor_peer_id=mon,
        monitor_connected=[P1, P3],
        expected={P1: "a1", P2: "a2", P3: "a3"},
        last_heard={P1: 1000.0, P3: 1000.0},
        now=1000.0,
        heard_window_s=45,
    )
    # P1-P2 talk to each other, P3 is alone (the monitor bridging them does not count).
    split = build_topology(
        availability={P1: _avail(P1, [P2, mon]), P3: _avail(P3, [mon])}, **kwargs
    )
    assert split["partitioned"] is True
    assert split["components"] == [sorted([P1, P2]), [P3]]
    kinds = {(e["source"], e["target"]): e["kinds"] for e in split["edges"]}
    assert kinds[tuple(sorted([mon, P1]))] == ["availability", "monitor"]
    healed = build_topology(availability={P1: _avail(P1, [P2]), P3: _avail(P3, [P2])}, **kwargs)
    assert healed["partitioned"] is False and len(healed["components"]) == 1
    nodes = {n["id"]: n for n in healed["nodes"]}
    assert nodes[mon]["kind"] == "monitor" and nodes[P2]["heard"] is False


async def test_peer_that_leaves_the_bootstrap_list_stays_expected_then_is_forgotten() -> None:
    """WHOOSH drops an agent from its list as soon as a health poll fails (crash, restart).
    The monitor keeps expecting it: coverage names it missing instead of shrinking, it is
    redialled, and when it is back its reconnect is counted. After forget_after_s: gone."""
    now = [1000.0]
    dialer = FakeDialer()
    conn = PeerConnector(
        dialer, MultiaddrPolicy(), backoff_initial_s=1, clock=lambda: now[0], forget_after_s=60
    )
    p1 = peer(P1, "/ip4/10.0.0.1/tcp/9000", name="a1")
    p2 = peer(P2, "/ip4/10.0.0.2/tcp/9000", name="a2")
    conn.set_expected([p1, p2])
    await conn.run_round()
    assert conn.peers[P2].connected
    # a2 crashes; WHOOSH's next list no longer has it.
    dialer.connected.discard(P2)
    dialer.fail[P2] = "connection_refused"
    now[0] += 2
    conn.set_expected([p1])
    await conn.run_round()
    s2 = conn.peers[P2]
    assert not s2.connected and not s2.in_bootstrap and s2.left_bootstrap_at == 1002
    assert s2.to_dict()["in_bootstrap"] is False
    cov = build_coverage(
        expected=conn.peers,
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
    conn.set_expected([p1, p2])
    await conn.run_round()
    assert conn.peers[P2] is s2 and s2.connected and s2.reconnects == 1 and s2.in_bootstrap
    # Gone for good: forgotten forget_after_s after it left the list.
    conn.set_expected([p1])
    now[0] += 59
    conn.set_expected([p1])
    assert P2 in conn.peers
    now[0] += 2
    conn.set_expected([p1])
    assert set(conn.peers) == {P1}
