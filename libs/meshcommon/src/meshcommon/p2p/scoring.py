"""GossipSub v1.1 peer scoring as a mesh peer runs it: invalid messages (P4) lower a peer's
score, and a peer below the graylist threshold has its RPCs ignored until the counter has
decayed.

What py-libp2p 0.8.1 has (``libp2p.pubsub.score``): a ``PeerScorer`` with P1-P7, decayed
every heartbeat, fed by ``Pubsub.push_msg`` (``on_invalid_message`` when a topic validator
rejects a message, per topic, against the peer that forwarded it), and thresholds that
every gate but one uses (publish, gossip, PX, GRAFT refusal). What it lacks, and what
``MeshPeerScorer`` (override ``graylist``) changes:

- Graylisting ignores nothing: ``Pubsub`` reads, handles and forwards every RPC of a peer
  below ``graylist_threshold`` (the spec: "its RPCs are ignored"; go-libp2p-pubsub's
  ``AcceptFrom`` returns ``AcceptNone``). Here ``MeshPubsub`` drops each RPC of a
  graylisted peer before handling it, and counts it. The set of graylisted peers is kept
  up to date on each invalid message and each heartbeat, so the per-RPC test is one set
  lookup, not a score computation.
- P4 is linear (``weight * min(counter, cap)``); the spec squares the counter, so that a
  few invalid messages cost little and a sustained stream a lot. Here: squared.
- ``remove_peer`` (called on disconnect) forgets the peer's counters: a graylisted peer
  reconnects with a clean score. The spec keeps a disconnected peer's score for
  ``RetainScore``. Here the invalid-message counters are kept (decaying as usual) for up
  to ``MAX_RETAINED_PEERS`` peers until they decay to zero.
- Counters decay towards zero for ever (no ``DecayToZero``); here a P4 counter below
  ``DECAY_TO_ZERO`` is dropped, so that a peer that stopped misbehaving has no entry.

It also remembers when each peer was graylisted (since; until: when its score will be back
above the threshold if nothing changes) for the node's mesh view. Written so it could be
offered upstream: the same hooks and ``ScoreParams``; the changes belong in ``PeerScorer``
and in ``Pubsub.continuously_read_stream`` (the graylist check).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from libp2p.peer.id import ID
from libp2p.pubsub.score import PeerScorer, ScoreParams, TopicScoreParams

from meshcommon.p2p.types import NodeCounters, PeerScore
from meshcommon.topics import ALL_TOPICS

# Chosen for the mesh (see scoring_params): invalid messages alone drive the score.
P4_WEIGHT = 1.0  # subtracted per topic as weight * counter**2 (upstream's sign convention)
P4_DECAY = 0.97  # per heartbeat (1 s): a counter halves in ~23 s, is gone in ~4 min
P4_CAP = 1000.0  # only bounds the arithmetic: 1000**2 is far below any threshold
GOSSIP_THRESHOLD = -100.0  # ~10 recent invalid messages on one topic: no gossip to/from it
PUBLISH_THRESHOLD = -200.0  # ~14: its messages no longer accepted, ours not sent to it
GRAYLIST_THRESHOLD = -400.0  # ~20 on one topic (or ~12 on each of three): RPCs ignored
DECAY_TO_ZERO = 0.01
MAX_RETAINED_PEERS = 4096  # disconnected peers whose counters are kept (decaying)


def scoring_params(topics: tuple[str, ...] = ALL_TOPICS) -> ScoreParams:
    """Score parameters for the mesh: only P4 (invalid messages) weighs; time in mesh and
    deliveries (P1-P3) are not used (agents publish every 30 s: nothing to measure a
    delivery rate on), nor IP colocation (P7: every agent of a Swarm node shares an IP),
    nor P5 (py-libp2p's behaviour penalties are arbitrary amounts). ``topics`` is unused
    by py-libp2p 0.8.1 (one set of topic parameters for every topic); it names what the
    parameters are for."""
    del topics
    return ScoreParams(
        p4_invalid_messages=TopicScoreParams(weight=P4_WEIGHT, cap=P4_CAP, decay=P4_DECAY),
        gossip_threshold=GOSSIP_THRESHOLD,
        publish_threshold=PUBLISH_THRESHOLD,
        graylist_threshold=GRAYLIST_THRESHOLD,
        accept_px_threshold=0.0,
    )


@dataclass
class _Graylist:
    since: float
    until: float
    count: int = 1
    active: bool = True


class MeshPeerScorer(PeerScorer):
    """``PeerScorer`` with a squared P4, retained counters and a maintained graylist (see
    the module). ``spec_p4=False`` keeps upstream's linear P4 and forgetting (override
    ``graylist`` off): the graylist is then still tracked, for the mesh view, but not
    enforced by the reader."""

    def __init__(
        self,
        params: ScoreParams,
        *,
        spec: bool = True,
        heartbeat_s: float = 1.0,
        on_graylisted: Callable[[str, float, float], None] | None = None,
        counters: NodeCounters | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(params)
        self._counters = counters
        self.spec = spec
        self.heartbeat_s = heartbeat_s
        self._clock = clock
        self._on_graylisted = on_graylisted
        self.graylisted: set[ID] = set()  # read per RPC: one set lookup
        self._graylist: dict[ID, _Graylist] = {}
        self.rpcs_ignored: dict[ID, int] = {}
        self.rpcs_ignored_total = 0
        self.graylistings_total = 0
        self._retained: dict[ID, float] = {}  # disconnected peer -> when it left

    # -- scoring ------------------------------------------------------------------------
    def topic_score(self, peer: ID, topic: str) -> float:
        if not self.spec:
            return super().topic_score(peer, topic)
        # P1-P3 as upstream (their weights are 0 here), P4 squared as the spec says.
        p = self.params
        counters = self.invalid_messages.get(peer)
        invalid = counters.get(topic, 0.0) if counters else 0.0
        s = 0.0
        if p.p1_time_in_mesh.weight:
            s += p.p1_time_in_mesh.weight * min(
                self.time_in_mesh[peer][topic], p.p1_time_in_mesh.cap
            )
        if p.p2_first_message_deliveries.weight:
            s += p.p2_first_message_deliveries.weight * min(
                self.first_message_deliveries[peer][topic], p.p2_first_message_deliveries.cap
            )
        if p.p3_mesh_message_deliveries.weight:
            s += p.p3_mesh_message_deliveries.weight * min(
                self.mesh_message_deliveries[peer][topic], p.p3_mesh_message_deliveries.cap
            )
        capped = min(invalid, p.p4_invalid_messages.cap)
        return s - p.p4_invalid_messages.weight * capped * capped

    def total_score(self, peer: ID) -> float:
        """The score over every topic the peer has counters on."""
        counters = self.invalid_messages.get(peer)
        return self.score(peer, list(counters) if counters else [])

    # -- hooks --------------------------------------------------------------------------
    def on_invalid_message(self, peer: ID, topic: str) -> None:
        super().on_invalid_message(peer, topic)
        self._update(peer)

    def on_heartbeat(self, dt_seconds: float = 1.0) -> None:
        super().on_heartbeat(dt_seconds)
        for peer in list(self.invalid_messages):
            counters = self.invalid_messages[peer]
            for topic in [t for t, v in counters.items() if v < DECAY_TO_ZERO]:
                del counters[topic]
            if not counters:
                del self.invalid_messages[peer]
        for peer in list(self.invalid_messages) + list(self.graylisted):
            self._update(peer)
        for peer in [p for p in self._retained if p not in self.invalid_messages]:
            self._forget(peer)

    def remove_peer(self, peer: ID) -> None:
        if not self.spec or peer not in self.invalid_messages:
            super().remove_peer(peer)
            self._forget(peer)
            return
        # Keep its invalid-message counters (decaying): reconnecting must not clear them.
        kept = self.invalid_messages.pop(peer)
        super().remove_peer(peer)
        self.invalid_messages[peer] = kept
        self._retained[peer] = self._clock()
        if len(self._retained) > MAX_RETAINED_PEERS:
            oldest = min(self._retained, key=self._retained.__getitem__)
            self.invalid_messages.pop(oldest, None)
            self._forget(oldest)

    def add_peer(self, peer: ID) -> None:
        """The peer is connected (again)."""
        self._retained.pop(peer, None)

    def ignored(self, peer: ID) -> None:
        """One RPC of a graylisted peer dropped by the reader."""
        self.rpcs_ignored[peer] = self.rpcs_ignored.get(peer, 0) + 1
        self.rpcs_ignored_total += 1

    # -- graylist bookkeeping -----------------------------------------------------------
    def _update(self, peer: ID) -> None:
        score = self.total_score(peer)
        threshold = self.params.graylist_threshold
        entry = self._graylist.get(peer)
        if score < threshold:
            now = self._clock()
            until = now + self._seconds_to_recover(score, threshold)
            if peer not in self.graylisted:
                self.graylisted.add(peer)
                self.graylistings_total += 1
                self._count()
                if entry is None:
                    entry = self._graylist[peer] = _Graylist(now, until, 0)
                entry.since, entry.count, entry.active = now, entry.count + 1, True
                if self._on_graylisted is not None:
                    self._on_graylisted(str(peer), score, until)
            assert entry is not None
            entry.until = until
        elif peer in self.graylisted:
            self.graylisted.discard(peer)
            self._count()
            if entry is not None:
                entry.active, entry.until = False, self._clock()

    def _count(self) -> None:
        if self._counters is not None:
            self._counters.graylistings = self.graylistings_total
            self._counters.graylisted_peers = len(self.graylisted)

    def _seconds_to_recover(self, score: float, threshold: float) -> float:
        """How long until ``score`` (negative, P4 only) decays above ``threshold`` if no
        new invalid message counts: each counter shrinks by the decay per heartbeat, P4 by
        its square (linearly without the spec change)."""
        decay = self.params.p4_invalid_messages.decay
        if not 0 < decay < 1 or score >= 0 or threshold >= 0:
            return math.inf
        power = 2 if self.spec else 1
        beats = math.log(threshold / score) / (power * math.log(decay))
        return max(0.0, math.ceil(beats)) * self.heartbeat_s

    def _forget(self, peer: ID) -> None:
        if self._retained.pop(peer, None) is not None:
            # Scoring it again (heartbeats) re-created upstream's per-peer entries.
            super().remove_peer(peer)
        self.rpcs_ignored.pop(peer, None)
        if peer in self.graylisted:
            self.graylisted.discard(peer)
            self._count()
        entry = self._graylist.get(peer)
        if entry is not None and not entry.active:
            del self._graylist[peer]

    # -- view ---------------------------------------------------------------------------
    def peer_scores(self, limit: int) -> tuple[list[PeerScore], int]:
        """Peers with a non-zero score or a graylisting on record, worst first, at most
        ``limit`` (and how many were left out)."""
        peers = set(self.invalid_messages) | set(self._graylist) | self.graylisted
        rows = []
        for peer in peers:
            counters: dict[str, float] = self.invalid_messages.get(peer) or {}
            entry = self._graylist.get(peer)
            rows.append(
                PeerScore(
                    peer_id=str(peer),
                    score=round(self.total_score(peer), 3),
                    invalid_messages={t: round(v, 3) for t, v in sorted(counters.items())},
                    graylisted=peer in self.graylisted,
                    graylisted_since=entry.since if entry else None,
                    graylisted_until=entry.until if entry else None,
                    graylistings=entry.count if entry else 0,
                    rpcs_ignored=self.rpcs_ignored.get(peer, 0),
                    connected=peer not in self._retained,
                )
            )
        rows.sort(key=lambda r: (not r.graylisted, r.score, r.peer_id))
        return rows[:limit], max(0, len(rows) - limit)
