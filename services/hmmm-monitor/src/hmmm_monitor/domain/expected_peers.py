"""Whom the monitor expects to be connected to, and how each dial went.

Every expected peer has a ``PeerState`` with the real cause of its last failure, dial
latency and reconnect count. A peer that keeps failing backs off exponentially (capped,
jittered: ``meshcommon.peer.backoff``); new addresses or a return to the bootstrap list are
a fresh chance. A peer ID that several hosts claim (``BootstrapPeer.conflict``) keeps each
claimant apart, with what the libp2p handshake proved about it. A peer that WHOOSH says left
on purpose (scaled down, its node drained, its task updated) is not expected any more: it is
listed under ``left`` with the reason, never reported missing. Pure: the clock and the
jitter are injected, dialling is ``workers.connector``'s job.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from meshcommon.models import BootstrapPeer, Claimant, LeftPeer
from meshcommon.multiaddr_policy import RejectedAddr
from meshcommon.peer.backoff import BackoffPolicy, default_jitter

log = logging.getLogger(__name__)

REASON_NO_DIALABLE = "no_dialable_multiaddr"
REASON_DISCONNECTED = "disconnected"
REASON_NOT_DIALLED = "not_dialled_yet"

VERDICT_HOLDS_KEY = "holds_key"  # the handshake proved this host has the peer's key
VERDICT_IMPOSTOR = "impostor"  # the handshake proved it has another key
VERDICT_UNVERIFIED = "unverified"  # not proven either way (yet): unreachable, not tried


@dataclass
class ClaimantState:
    """One host claiming a conflicted peer ID, and what the handshake proved about it."""

    name: str
    url: str
    multiaddrs: list[str]
    verdict: str = VERDICT_UNVERIFIED
    reason: str | None = None  # the proof's reason: peer_id_mismatch, timeout...
    evidence: str | None = None  # e.g. the peer ID its key really belongs to
    proven_multiaddr: str | None = None
    checked_at: float | None = None

    @classmethod
    def of(cls, claimant: Claimant) -> ClaimantState:
        return cls(claimant.name, claimant.url, list(claimant.multiaddrs))

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "url": self.url,
            "multiaddrs": self.multiaddrs,
            "verdict": self.verdict,
            "reason": self.reason,
            "evidence": self.evidence,
            "proven_multiaddr": self.proven_multiaddr,
            "checked_at": self.checked_at,
        }


@dataclass
class PeerState:
    peer_id: str
    name: str
    priority: int
    multiaddrs: list[str]
    connected: bool = False
    connected_multiaddr: str | None = None
    connected_since: float | None = None
    dial_attempts: int = 0
    dial_failures: int = 0
    consecutive_failures: int = 0
    dial_latency_ms: float | None = None
    reconnects: int = 0
    ever_connected: bool = False
    last_error_reason: str | None = None
    last_error_detail: str | None = None
    last_error_at: float | None = None
    last_dial_errors: list[dict[str, str]] = field(default_factory=list)
    skipped_multiaddrs: list[dict[str, str]] = field(default_factory=list)
    next_dial_at: float = 0.0
    in_bootstrap: bool = True
    left_bootstrap_at: float | None = None  # when it dropped out of the bootstrap list
    # Every failed dial attempt (one per multiaddr tried) by reason, and the latest of
    # each reason: a peer-ID mismatch between successful dials is still a fault.
    failure_reasons: Counter[str] = field(default_factory=Counter)
    last_failure: dict[str, dict[str, object]] = field(default_factory=dict)
    failing_since: float | None = None  # first failed dial of the current streak
    dialling: bool = False  # a dial is in flight (in the background)
    conflict: bool = False
    claimants: list[ClaimantState] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return self.last_error_reason or REASON_NOT_DIALLED

    def impostors(self) -> list[ClaimantState]:
        return [c for c in self.claimants if c.verdict == VERDICT_IMPOSTOR]

    def dial_multiaddrs(self) -> list[str]:
        """The addresses worth dialling: all but those of proven impostors."""
        refused = {a for c in self.impostors() for a in c.multiaddrs}
        return [a for a in self.multiaddrs if a not in refused]

    def adopt_claimants(self, claimants: Sequence[Claimant]) -> None:
        """The entry's claimants; a claimant with the same URL and addresses keeps what
        was proven about it."""
        known = {(c.url, tuple(c.multiaddrs)): c for c in self.claimants}
        self.claimants = [
            known.get((c.url, tuple(c.multiaddrs))) or ClaimantState.of(c) for c in claimants
        ]

    def to_dict(self) -> dict[str, object]:
        return {
            "peer_id": self.peer_id,
            "name": self.name,
            "priority": self.priority,
            "multiaddrs": self.multiaddrs,
            "connected": self.connected,
            "connected_multiaddr": self.connected_multiaddr,
            "connected_since": self.connected_since,
            "dial_attempts": self.dial_attempts,
            "dial_failures": self.dial_failures,
            "dial_latency_ms": self.dial_latency_ms,
            "reconnects": self.reconnects,
            "last_error": None
            if self.last_error_reason is None
            else {
                "reason": self.last_error_reason,
                "detail": self.last_error_detail,
                "at": self.last_error_at,
                "attempts": self.last_dial_errors,
            },
            "skipped_multiaddrs": self.skipped_multiaddrs,
            "next_dial_at": None if self.connected else self.next_dial_at,
            "in_bootstrap": self.in_bootstrap,
            "left_bootstrap_at": self.left_bootstrap_at,
            "failure_reasons": dict(self.failure_reasons),
            "dialling": self.dialling,
            "conflict": self.conflict,
            "claimants": [c.to_dict() for c in self.claimants],
        }


def impostor_report(states: Iterable[PeerState]) -> list[dict[str, object]]:
    """Every host the handshake proved not to hold the key of the peer ID it claims."""
    return [
        {
            "peer_id": s.peer_id,
            "claimed_by": c.name,
            "url": c.url,
            "multiaddrs": c.multiaddrs,
            "multiaddr": c.proven_multiaddr,
            "evidence": c.evidence,
            "checked_at": c.checked_at,
        }
        for s in states
        for c in s.impostors()
    ]


def with_dht_peers(
    listed: Sequence[BootstrapPeer],
    found: Sequence[tuple[str, Sequence[str]]],
    *,
    listed_by_whoosh: bool,
    known_names: Mapping[str, str] | None = None,
) -> list[BootstrapPeer]:
    """Whom to expect: the bootstrap list, plus the peers the Kademlia DHT found that it does
    not list (named by their peer ID's tail; their addresses as the DHT gave them, the
    connector's policy filters them) when WHOOSH did not give that list.

    A list WHOOSH answered with is the authority on which peers are agents (it proved each
    one's key); any libp2p node of the mesh can answer DHT queries (a js-libp2p tool, a
    go-libp2p gateway), so with WHOOSH answering a DHT find is never expected, or every such
    node would read as an agent never heard. Without WHOOSH (down, its cached list, static
    peers, none), the DHT alone says whom to expect. A found peer keeps the name it was
    expected under before (``known_names``: an agent WHOOSH listed, then dropped from
    its last answer before going down, is still that agent in alerts and the API)."""
    out = list(listed)
    if listed_by_whoosh:
        return out
    seen = {p.peer_id for p in listed}
    for peer_id, addrs in found:
        if peer_id in seen or not addrs:
            continue
        seen.add(peer_id)
        out.append(
            BootstrapPeer(
                peer_id=peer_id,
                name=(known_names or {}).get(peer_id) or f"dht-{peer_id[-8:]}",
                priority=0,
                multiaddr=addrs[0],
                multiaddrs=list(addrs),
            )
        )
    return out


class ExpectedPeers:
    """The expected peers' states, kept across bootstrap refreshes."""

    def __init__(
        self,
        *,
        backoff_initial_s: float = 2.0,
        backoff_max_s: float = 60.0,
        forget_after_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = default_jitter,
    ) -> None:
        self.backoff = BackoffPolicy(backoff_initial_s, backoff_max_s, jitter)
        self.forget_after_s = forget_after_s
        self._clock = clock
        self.peers: dict[str, PeerState] = {}
        self.left: dict[str, LeftPeer] = {}  # left on purpose, not expected any more
        self.connected_peers: tuple[str, ...] = ()  # every peer the node is connected to

    def set_expected(self, peers: Sequence[BootstrapPeer], left: Sequence[LeftPeer] = ()) -> None:
        """Adopt a new bootstrap list: keep history for known peers; a peer that left the
        list stays expected for ``forget_after_s``, then is dropped, unless WHOOSH says it
        ``left`` on purpose: then it is dropped at once.

        WHOOSH lists only agents that answered its last health poll, so an agent that
        crashed or is restarting leaves the list within seconds. Forgetting it at once
        would make coverage shrink to "5/5" instead of naming the lost agent missing, and
        reset its reconnect history when it comes back. A scale-down or a drain is no such
        loss: those agents are not coming back, and WHOOSH knows it.
        """
        now = self._clock()
        listed = {p.peer_id for p in peers}
        self.left = {p.peer_id: p for p in left if p.peer_id not in listed}
        fresh: dict[str, PeerState] = {}
        for p in peers:
            addrs = list(dict.fromkeys([p.multiaddr, *p.multiaddrs]))
            state = self.peers.get(p.peer_id)
            if state is None:
                state = PeerState(p.peer_id, p.name, p.priority, addrs)
            elif state.multiaddrs != addrs or state.left_bootstrap_at is not None:
                # New addresses, or back in WHOOSH's list (it answered a health poll again),
                # are a new chance: don't make them wait out the old backoff.
                state.multiaddrs, state.next_dial_at, state.consecutive_failures = addrs, 0.0, 0
            state.name, state.priority = p.name, p.priority
            state.in_bootstrap, state.left_bootstrap_at = True, None
            state.conflict = p.conflict
            state.adopt_claimants(p.claimants if p.conflict else ())
            fresh[p.peer_id] = state
        for pid, state in self.peers.items():
            if pid in fresh:
                continue
            if pid in self.left:
                gone = self.left[pid]
                log.info("%s (%s) left: %s; not expected any more", state.name, pid, gone.reason)
                continue
            if state.left_bootstrap_at is None:
                state.in_bootstrap, state.left_bootstrap_at = False, now
            if now - state.left_bootstrap_at < self.forget_after_s:
                fresh[pid] = state  # still expected (and redialled with backoff)
            else:
                log.info("forgetting %s (%s): not in the bootstrap list", state.name, pid)
        self.peers = fresh

    def observe(self, connected_peers: Sequence[str]) -> list[PeerState]:
        """Adopt the node's view of its connections; returns the peers just lost."""
        self.connected_peers = tuple(connected_peers)
        connected = set(connected_peers)
        now = self._clock()
        lost = []
        for s in self.peers.values():
            if s.peer_id in connected and not s.connected:
                self.mark_connected(s, s.connected_multiaddr)  # e.g. the agent dialled us
            elif s.connected and s.peer_id not in connected:
                s.connected, s.connected_since = False, None
                s.last_error_reason, s.last_error_at = REASON_DISCONNECTED, now
                s.last_error_detail = "connection closed (agent restarted or network issue)"
                s.next_dial_at = 0.0  # redial at once: restarted agents come back fast
                lost.append(s)
        return lost

    def next_dial_in(self) -> float | None:
        """Seconds until the next dial is due (0: one is due now); None: nobody to dial."""
        now = self._clock()
        waits = [
            s.next_dial_at - now for s in self.peers.values() if not s.connected and not s.dialling
        ]
        return max(0.0, min(waits)) if waits else None

    def due(self) -> list[PeerState]:
        """Peers to dial now: not connected, not being dialled, and their backoff is over."""
        now = self._clock()
        return [
            s
            for s in self.peers.values()
            if not s.connected and not s.dialling and s.next_dial_at <= now
        ]

    def mark_connected(
        self, s: PeerState, multiaddr: str | None, dial_latency_ms: float | None = None
    ) -> None:
        if s.ever_connected:
            s.reconnects += 1
        s.connected, s.ever_connected, s.connected_since = True, True, self._clock()
        s.connected_multiaddr = multiaddr
        s.consecutive_failures = 0
        s.failing_since = None
        if dial_latency_ms is not None:
            s.dial_latency_ms = round(dial_latency_ms, 1)

    def count_failures(self, s: PeerState, errors: Sequence[dict[str, str]]) -> None:
        """Record each failed attempt of a dial (succeeded or not) by its reason."""
        now = self._clock()
        for err in errors:
            reason = err.get("reason", "dial_error")
            s.failure_reasons[reason] += 1
            s.last_failure[reason] = {**err, "at": now}

    def mark_skipped(self, s: PeerState, rejected: Sequence[RejectedAddr]) -> None:
        """Record which of its addresses the policy would not dial, and why."""
        s.skipped_multiaddrs = [
            {"multiaddr": r.multiaddr, "reason": r.reason, "detail": r.detail} for r in rejected
        ]

    def mark_failed(
        self, s: PeerState, reason: str, detail: str, errors: list[dict[str, str]]
    ) -> float:
        """Record a failed dial; returns the backoff before the next one, in seconds."""
        now = self._clock()
        s.dial_failures += 1
        s.consecutive_failures += 1
        if s.consecutive_failures == 1:
            s.failing_since = now
        s.last_error_reason, s.last_error_detail, s.last_error_at = reason, detail, now
        s.last_dial_errors = errors
        delay = self.backoff.jittered_s(s.consecutive_failures)
        s.next_dial_at = now + delay
        return delay
