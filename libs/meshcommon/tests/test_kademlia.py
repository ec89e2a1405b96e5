"""Kademlia's pure parts: distances, the bounded routing table, one lookup's bookkeeping,
the walk schedule."""

from __future__ import annotations

import os
import random

from meshcommon.kademlia import (
    K,
    Lookup,
    RoutingTable,
    WalkSchedule,
    common_prefix_len,
    kad_key,
    random_key,
)


def ids(n: int) -> list[bytes]:
    return [bytes([0x00, 32]) + os.urandom(32) for _ in range(n)]


def test_common_prefix_len() -> None:
    assert common_prefix_len(0, 0) == 256
    assert common_prefix_len(0, 1 << 255) == 0
    assert common_prefix_len(0b1000, 0b1001) == 255


def test_closest_is_sorted_by_xor_distance_and_excludes() -> None:
    me, *peers = ids(50)
    table = RoutingTable(me, max_peers=1000)
    for p in peers:
        table.add(p, [b"addr"])
    target = kad_key(peers[7])
    got = [e.peer_id for e in table.closest(target, 5)]
    assert got[0] == peers[7]  # distance 0
    assert got == sorted(got, key=lambda p: kad_key(p) ^ target)
    assert peers[7] not in [e.peer_id for e in table.closest(target, 5, exclude=peers[7])]


def test_table_is_bounded_per_bucket_and_in_total() -> None:
    me, *peers = ids(400)
    table = RoutingTable(me, k=4, max_peers=1000)
    for p in peers:
        table.add(p, [])
    # Half the random IDs fall in bucket 0, a quarter in bucket 1...: k each at most.
    assert len(table) <= 4 * 12
    assert table.refused_full > 300
    small = RoutingTable(me, k=20, max_peers=10)
    for p in peers:
        small.add(p, [])
    assert len(small) == 10
    assert not small.add(me, [])  # never ourselves


def test_refresh_keeps_old_addrs_when_none_given() -> None:
    me, p = ids(2)
    table = RoutingTable(me)
    table.add(p, [b"a"])
    table.add(p, [])
    assert table.get(p).addrs == (b"a",)  # type: ignore[union-attr]
    assert table.remove(p) and not table.remove(p) and len(table) == 0


def test_lookup_asks_closest_first_alpha_at_a_time_until_k_closest_asked() -> None:
    target, *peers = ids(30)
    lk = Lookup(target, k=3, max_queries=100)
    lk.offer(peers[:10])
    first = lk.next_to_ask(2)
    assert len(first) == 2 and lk.next_to_ask(2) == []  # two in flight
    dist = sorted(peers[:10], key=lambda p: kad_key(p) ^ kad_key(target))
    assert set(first) == set(dist[:2])
    for p in first:
        lk.finished(p, answered=True)
    assert not lk.done()  # the third closest was not asked
    third = lk.next_to_ask(2)
    assert third == [dist[2]]
    lk.finished(dist[2], answered=False)  # unreachable: the 4th closest moves up
    assert lk.next_to_ask(2) == [dist[3]]
    lk.finished(dist[3], answered=True)
    assert lk.done()
    assert lk.answered == {dist[0], dist[1], dist[3]}


def test_lookup_stops_at_its_query_budget() -> None:
    target, *peers = ids(20)
    lk = Lookup(target, k=20, max_queries=4)
    lk.offer(peers)
    asked = lk.next_to_ask(10)
    assert len(asked) == 4
    for p in asked:
        lk.finished(p, True)
    assert lk.next_to_ask(10) == [] and lk.done()


def test_walks_are_quick_while_they_find_news_then_back_off_to_the_refresh() -> None:
    s = WalkSchedule(refresh_s=20, fast_s=2)
    assert s.after_walk(3) == 2
    assert [s.after_walk(0) for _ in range(5)] == [4, 8, 16, 20, 20]
    assert s.after_walk(1) == 2  # a newcomer: look around again soon


def test_random_keys_are_peer_id_shaped() -> None:
    key = random_key(random.Random(1))
    assert key[:2] == bytes([0x00, 32]) and len(key) == 34
    assert K == 20
