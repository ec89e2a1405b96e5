"""Per-agent views of the bootstrap list: stable, bounded, ring neighbours first, and
changed only when the agent's own view changes."""

from __future__ import annotations

import hashlib
import random

import pytest

from meshcommon.models import BootstrapPeer
from whoosh.domain.peer_view import MAX_VIEW_K, PeerIndex

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def peer_id(n: int) -> str:
    """A peer-ID-shaped string (base58, 52 characters), distinct per ``n``."""
    digest = hashlib.sha256(str(n).encode()).digest()
    return "12D3KooW" + "".join(B58[b % 58] for b in digest + digest[:12])


def entry(pid: str, priority: int = 1, ip: str = "10.0.0.1") -> BootstrapPeer:
    addr = f"/ip4/{ip}/tcp/9000/p2p/{pid}"
    return BootstrapPeer(
        peer_id=pid, name=pid[-6:], priority=priority, multiaddr=addr, multiaddrs=[addr]
    )


def index_of(ids: list[str]) -> PeerIndex:
    return PeerIndex([entry(pid, n) for n, pid in enumerate(ids, start=1)])


IDS = [peer_id(n) for n in range(200)]


def test_ring_neighbours_come_first_and_match_the_agents_ring() -> None:
    index = index_of(IDS)
    ring = sorted(IDS)
    for me in random.Random(1).sample(IDS, 20):
        view = index.view(me, 4)
        others = [p for p in ring if p != me]
        # As chorus_agent.domain.peers.choose_dial_targets computes the successor.
        successor = next((p for p in others if p > me), others[0])
        predecessor = next((p for p in reversed(others) if p < me), others[-1])
        assert (view.successor, view.predecessor) == (successor, predecessor)
        assert view.peer_ids[:2] == (successor, predecessor)
        assert me not in view.peer_ids
        assert len(view.peer_ids) == len(set(view.peer_ids)) == 6


def test_an_unlisted_peer_gets_where_it_would_sit_on_the_ring() -> None:
    index = index_of(IDS[:10])
    me = IDS[150]
    ring = sorted(IDS[:10])
    view = index.view(me, 3)
    assert view.successor == next((p for p in ring if p > me), ring[0])
    assert view.predecessor == next((p for p in reversed(ring) if p < me), ring[-1])
    assert len(view.peer_ids) == 5


@pytest.mark.parametrize("k", [0, 1, 8, MAX_VIEW_K])
def test_bounded_by_k_and_by_the_list(k: int) -> None:
    for n in (0, 1, 2, 3, 5, 40):
        index = index_of(IDS[:n])
        for me in [*IDS[:n], IDS[199]]:
            view = index.view(me, k)
            others = n - (1 if me in IDS[:n] else 0)
            assert len(view.peer_ids) == min(others, k + 2 if others > 1 else others)
            assert me not in view.peer_ids


def test_stable_across_polls_and_snapshots() -> None:
    """The same agent gets the same view from the same membership, whatever order the
    list is in and whoever asked before (also across WHOOSH restarts: no salt)."""
    shuffled = IDS[:]
    random.Random(2).shuffle(shuffled)
    a, b = index_of(IDS), index_of(shuffled)
    for me in IDS[:30]:
        assert a.view(me, 8) == a.view(me, 8) == b.view(me, 8)
    # Different agents get different random peers.
    assert len({a.view(me, 8).peer_ids[2:] for me in IDS[:30]}) == 30


def test_priorities_elsewhere_do_not_change_a_view() -> None:
    """The whole list renumbers every entry when an early peer leaves; a view numbers its
    own entries, so its tag does not move."""
    before = PeerIndex([entry(pid, n) for n, pid in enumerate(IDS, start=1)])
    after = PeerIndex([entry(pid, n + 1) for n, pid in enumerate(IDS, start=1)])
    me = IDS[7]
    assert before.view(me, 8).etag == after.view(me, 8).etag
    assert [p.priority for p in after.entries(after.view(me, 8))] == list(range(1, 11))


def test_a_change_elsewhere_changes_few_views() -> None:
    """One peer joins or leaves a list of 1,000: about k + 2 views change, not 1,000."""
    ids = [peer_id(n) for n in range(1000)]
    k = 8
    base = index_of(ids)
    views = {me: base.view(me, k) for me in ids}
    joined = index_of([*ids, peer_id(5000)])
    changed = [me for me in ids if joined.view(me, k).etag != views[me].etag]
    assert 1 <= len(changed) <= 3 * (k + 2), len(changed)
    # Everyone whose view changed now has the newcomer in it; nobody else does.
    assert all(peer_id(5000) in joined.view(me, k).peer_ids for me in changed)

    gone = ids[500]
    left = index_of([p for p in ids if p != gone])
    changed = {me for me in ids if me != gone and left.view(me, k).etag != views[me].etag}
    holders = {me for me in ids if gone in views[me].peer_ids}
    assert changed == holders and len(holders) <= 3 * (k + 2)


def test_a_changed_entry_changes_exactly_the_views_that_hold_it() -> None:
    ids = IDS[:100]
    base = index_of(ids)
    moved = ids[42]
    peers = [entry(pid, n, "10.0.0.2" if pid == moved else "10.0.0.1") for n, pid in enumerate(ids)]
    after = PeerIndex(peers)
    for me in ids:
        holds = moved in base.view(me, 8).peer_ids
        assert (after.view(me, 8).etag != base.view(me, 8).etag) == holds
