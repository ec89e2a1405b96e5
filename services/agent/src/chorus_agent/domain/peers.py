"""Which peers an agent knows and which ones it dials.

Each agent dials its successor on a ring of all known peer IDs (sorted), plus random others
until it has ``target_peers`` connections. With a per-agent view from WHOOSH the successor is
the one WHOOSH names (on the ring of every listed agent, which this agent no longer knows
in full). The ring alone makes the agent graph connected
once everyone knows the list; the random chords keep its diameter small. So a message
reaches the monitor even when the monitor is not connected to its sender.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet

from meshcommon.limits import (
    MAX_KNOWN_PEERS,
    MAX_MULTIADDRS_PER_PEER,
    REASON_TOO_MANY_MULTIADDRS,
)
from meshcommon.models import BootstrapPeer
from meshcommon.multiaddr_policy import MultiaddrPolicy

REASON_NO_USABLE_MULTIADDR = "no_usable_multiaddr"
# Where the book first heard of a peer (chorus_agent_peers_discovered_total{source}).
SOURCE_BOOTSTRAP = "bootstrap"  # WHOOSH's list or the static peers
SOURCE_GOSSIP = "gossip"  # the multiaddrs field of an availability broadcast
SOURCE_DHT = "dht"  # the Kademlia DHT
DISCOVERY_SOURCES = (SOURCE_BOOTSTRAP, SOURCE_GOSSIP, SOURCE_DHT)


def choose_dial_targets(
    self_id: str,
    peers: Sequence[BootstrapPeer],
    connected: set[str],
    target_peers: int,
    rng: random.Random | None = None,
    *,
    pending: AbstractSet[str] = frozenset(),
    ready: Callable[[str], bool] = lambda peer_id: True,
    successor: str | None = None,
) -> list[BootstrapPeer]:
    """Peers to dial now: the ring successor if not connected, then random others.

    ``pending`` peers are being dialled already (they count towards ``target_peers``);
    peers that are not ``ready`` are backing off after failed dials and are skipped, the
    successor included: a peer that keeps failing never holds up the others. ``successor``
    names the ring successor (WHOOSH's view says it); otherwise it is computed here."""
    others = {p.peer_id: p for p in peers if p.peer_id != self_id}
    if not others:
        return []
    if successor is None or successor not in others:  # none named, or not known here
        ring = sorted(others)
        successor = next((pid for pid in ring if pid > self_id), ring[0])

    def dialable(pid: str) -> bool:
        return pid not in connected and pid not in pending and ready(pid)

    chosen = [others[successor]] if dialable(successor) else []
    busy = len(others.keys() & (connected | set(pending)))
    need = target_peers - busy - len(chosen)
    candidates = [p for pid, p in others.items() if pid != successor and dialable(pid)]
    (rng or random).shuffle(candidates)
    return chosen + candidates[: max(0, need)]


class PeerBook:
    """Every peer this agent knows of, from WHOOSH, configuration and gossip.

    Thread-safe: the gossip consumer adds peers from the libp2p (trio) thread while the
    peering loop reads on asyncio. Gossiped addresses are only accepted for the peer that
    signed the message, so nobody can point others at a third party's ID.

    Bounded: anyone can mint peer IDs and announce them, so at most ``max_peers`` are
    kept, and the one heard of longest ago goes first (WHOOSH's peers are re-added every
    round, so they stay). A peer announcing more than ``MAX_MULTIADDRS_PER_PEER``
    addresses is refused before any is parsed. Refusals are counted by reason.
    """

    def __init__(
        self, policy: MultiaddrPolicy, self_id: str = "", *, max_peers: int = MAX_KNOWN_PEERS
    ) -> None:
        self.policy, self.self_id, self.max_peers = policy, self_id, max_peers
        self._peers: OrderedDict[str, BootstrapPeer] = OrderedDict()
        self._lock = threading.Lock()
        self.refused: Counter[str] = Counter()  # by reason
        self.evicted = 0
        # Peers new to the book, by the source that named them first: which of gossip and
        # the DHT discovers faster, in a mesh where both run.
        self.discovered: Counter[str] = Counter()

    def add(self, peer: BootstrapPeer, source: str = SOURCE_BOOTSTRAP) -> None:
        if peer.peer_id == self.self_id:
            return
        with self._lock:
            self._put(peer, source)

    def _put(self, peer: BootstrapPeer, source: str) -> None:
        """Caller holds the lock: newest last, the oldest dropped past the cap."""
        if self._peers.pop(peer.peer_id, None) is None:
            self.discovered[source] += 1
        self._peers[peer.peer_id] = peer
        while len(self._peers) > self.max_peers:
            self._peers.popitem(last=False)
            self.evicted += 1

    def learn(
        self, peer_id: str, multiaddrs: Sequence[str], name: str = "", source: str = SOURCE_GOSSIP
    ) -> bool:
        """Add a peer announced over gossip (or found by the DHT: ``source``); returns
        False if none of its addresses pass."""
        if peer_id == self.self_id:
            return False
        if len(multiaddrs) > MAX_MULTIADDRS_PER_PEER:
            self.refused[REASON_TOO_MANY_MULTIADDRS] += 1
            return False
        addrs = self.policy.filter(multiaddrs, peer_id).multiaddrs
        if not addrs:
            self.refused[REASON_NO_USABLE_MULTIADDR] += 1
            return False
        with self._lock:
            known = self._peers.get(peer_id)
            if known is not None and known.multiaddrs == addrs:
                self._peers.move_to_end(peer_id)
                return True
            self._put(
                BootstrapPeer(
                    peer_id=peer_id,
                    name=name or peer_id[-8:],
                    priority=0,
                    multiaddr=addrs[0],
                    multiaddrs=addrs,
                ),
                source,
            )
        return True

    def peers(self) -> list[BootstrapPeer]:
        with self._lock:
            return list(self._peers.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._peers)
