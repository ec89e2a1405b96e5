"""meshcommon.p2p.scoring: GossipSub v1.1 P4 as the spec has it (squared), the graylist
kept up to date for the reader, scores kept across reconnects; the chosen thresholds."""

from __future__ import annotations

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.score import PeerScorer

from meshcommon.p2p.scoring import (
    GOSSIP_THRESHOLD,
    GRAYLIST_THRESHOLD,
    PUBLISH_THRESHOLD,
    MeshPeerScorer,
    scoring_params,
)
from meshcommon.p2p.types import NodeCounters
from meshcommon.topics import COORDINATION, META_DISCUSSION


def peer(seed: int) -> ID:
    return ID.from_pubkey(create_new_key_pair(bytes([seed]) * 32).public_key)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def scorer(clock: Clock, **kw: object) -> MeshPeerScorer:
    return MeshPeerScorer(scoring_params(), clock=clock, **kw)  # type: ignore[arg-type]


def test_thresholds_are_ordered_as_the_spec_requires() -> None:
    p = scoring_params()
    assert p.graylist_threshold < p.publish_threshold < p.gossip_threshold < 0
    assert (GRAYLIST_THRESHOLD, PUBLISH_THRESHOLD, GOSSIP_THRESHOLD) == (-400, -200, -100)
    assert 0 < p.p4_invalid_messages.decay < 1


def test_p4_is_squared_so_a_few_invalid_messages_cost_little(clock: Clock) -> None:
    s, bad = scorer(clock), peer(1)
    for _ in range(3):
        s.on_invalid_message(bad, COORDINATION)
    assert s.total_score(bad) == pytest.approx(-9)
    assert s.allow_publish(bad, [COORDINATION]) and s.allow_gossip(bad, [COORDINATION])
    assert bad not in s.graylisted
    # Upstream's PeerScorer with the same parameters: linear.
    up = PeerScorer(scoring_params())
    for _ in range(3):
        up.on_invalid_message(bad, COORDINATION)
    assert up.score(bad, [COORDINATION]) == pytest.approx(-3)


def test_twenty_one_invalid_messages_graylist_and_the_counter_decays_back(clock: Clock) -> None:
    counters = NodeCounters()
    events: list[tuple[str, float, float]] = []
    s = scorer(clock, counters=counters, on_graylisted=lambda *e: events.append(e))
    bad, good = peer(1), peer(2)
    for _ in range(20):
        s.on_invalid_message(bad, META_DISCUSSION)
    assert bad not in s.graylisted  # -400 is not below -400
    s.on_invalid_message(bad, META_DISCUSSION)
    assert bad in s.graylisted and good not in s.graylisted
    assert counters.graylisted_peers == 1 and counters.graylistings == 1
    assert len(events) == 1 and events[0][0] == str(bad) and events[0][1] == pytest.approx(-441)
    row = s.peer_scores(10)[0][0]
    assert row.graylisted and row.graylisted_since == clock.now
    # 21 * 0.97**n < 20 after 2 heartbeats (0.97**2 * 21 = 19.76)
    assert row.graylisted_until == clock.now + 2.0
    s.ignored(bad)
    clock.now += 1
    s.on_heartbeat()
    assert bad in s.graylisted
    clock.now += 1
    s.on_heartbeat()
    assert bad not in s.graylisted
    assert counters.graylisted_peers == 0
    row = s.peer_scores(10)[0][0]
    assert not row.graylisted and row.graylistings == 1 and row.rpcs_ignored == 1
    assert row.score > GRAYLIST_THRESHOLD


def test_invalid_messages_on_several_topics_add_up(clock: Clock) -> None:
    s, bad = scorer(clock), peer(1)
    for _ in range(12):
        for topic in (COORDINATION, META_DISCUSSION, "CHORUS/context-feedback/v1"):
            s.on_invalid_message(bad, topic)
    assert s.total_score(bad) == pytest.approx(-3 * 144)
    assert bad in s.graylisted


def test_a_disconnect_does_not_clear_the_score_and_it_decays_to_nothing(clock: Clock) -> None:
    s, bad = scorer(clock), peer(1)
    for _ in range(25):
        s.on_invalid_message(bad, COORDINATION)
    s.remove_peer(bad)  # py-libp2p calls this on disconnect
    assert bad in s.graylisted and s.total_score(bad) == pytest.approx(-625)
    assert s.peer_scores(10)[0][0].connected is False
    s.add_peer(bad)  # reconnects: still graylisted
    assert bad in s.graylisted
    s.remove_peer(bad)
    for _ in range(400):  # 0.97**400 * 25 < 0.01: the counter is dropped, then the peer
        clock.now += 1
        s.on_heartbeat()
    assert bad not in s.graylisted
    assert s.invalid_messages.get(bad) is None
    rows, omitted = s.peer_scores(10)
    assert rows == [] and omitted == 0


def test_upstream_behaviour_without_the_override_forgets_on_disconnect(clock: Clock) -> None:
    s, bad = scorer(clock, spec=False), peer(1)
    for _ in range(401):
        s.on_invalid_message(bad, COORDINATION)
    assert bad in s.graylisted  # linear: -401
    s.remove_peer(bad)
    assert bad not in s.graylisted and s.total_score(bad) == 0
