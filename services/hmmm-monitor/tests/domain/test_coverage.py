"""Coverage: expected, connected and heard, with the missing ones named."""

from __future__ import annotations

from hmmm_monitor.domain.coverage import build_coverage
from hmmm_monitor.domain.expected_peers import ExpectedPeers
from hmmm_monitor.domain.store import SenderStats

from ..conftest import peer

# Real (valid) peer IDs: the policy parses the /p2p/ component.
P1, P2, P3 = (
    "12D3KooWLdRq9rGCYQMB7mpbAQuC2ZB1QxqC9LHXAmJ9FCJdwSKE",
    "12D3KooWCJfubkok7pXb8sdzz5NUmBQG6RxYG5su6cTMiyRVxbD3",
    "12D3KooWDMKk16NJMyzE9iFrZaun8TZn4y5Ajh8TBCFS4CCj5vWG",
)


def _stats(pid: str, last: float, count: int = 1) -> SenderStats:
    return SenderStats(pid, last, last, count)


def test_coverage_counts_expected_connected_heard_and_names_the_missing() -> None:
    expected = ExpectedPeers()
    expected.set_expected([peer(P1, "/ip4/10.0.0.1/tcp/1", name="a1"), peer(P2, name="a2")])
    expected.peers[P1].connected = True
    expected.peers[P2].last_error_reason = "peer_id_mismatch"
    senders = {P1: _stats(P1, 990), P2: _stats(P2, 900), "12D3KooWStranger": _stats("x", 995)}
    cov = build_coverage(
        expected=expected.peers,
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


def test_heard_through_a_gateway_is_heard_not_missing() -> None:
    # A monitor outside the overlay: it can dial only the gateway agent (P1); the others
    # have only overlay addresses it cannot reach, and their messages come through P1.
    expected = ExpectedPeers()
    expected.set_expected([peer(P1, name="gateway"), peer(P2, name="a2"), peer(P3, name="a3")])
    expected.peers[P1].connected = True
    for pid in (P2, P3):
        expected.peers[pid].last_error_reason = "no_dialable_multiaddr"
    senders = {pid: _stats(pid, 995) for pid in (P1, P2, P3)}
    cov = build_coverage(
        expected=expected.peers,
        senders=senders,
        now=1000,
        heard_window_s=45,
        bootstrap={},
        dropped={},
        rejected={},
    )
    assert (cov["expected"], cov["connected"], cov["heard"]) == (3, 1, 3)
    assert cov["heard_via_mesh"] == 2 and cov["missing"] == []
    assert {(n["name"], n["reason"]) for n in cov["not_connected"]} == {
        ("a2", "no_dialable_multiaddr"),
        ("a3", "no_dialable_multiaddr"),
    }
