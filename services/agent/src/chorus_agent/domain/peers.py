"""Which peers an agent knows and which ones it dials.

Each agent dials its successor on a ring of all known peer IDs (sorted), plus random others
until it has ``target_peers`` connections. The ring alone makes the agent graph connected
once everyone knows the list; the random chords keep its diameter small. So a message
reaches the monitor even when the monitor is not connected to its sender.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence

from meshcommon.models import BootstrapPeer
from meshcommon.multiaddr_policy import MultiaddrPolicy


def choose_dial_targets(
    self_id: str,
    peers: Sequence[BootstrapPeer],
    connected: set[str],
    target_peers: int,
    rng: random.Random | None = None,
) -> list[BootstrapPeer]:
    """Peers to dial now: the ring successor if not connected, then random others."""
    others = {p.peer_id: p for p in peers if p.peer_id != self_id}
    if not others:
        return []
    ring = sorted(others)
    successor = next((pid for pid in ring if pid > self_id), ring[0])
    chosen = [] if successor in connected else [others[successor]]
    need = target_peers - len(connected & others.keys()) - len(chosen)
    candidates = [p for pid, p in others.items() if pid not in connected and pid != successor]
    (rng or random).shuffle(candidates)
    return chosen + candidates[: max(0, need)]


class PeerBook:
    """Every peer this agent knows of, from WHOOSH, configuration and gossip.

    Thread-safe: the gossip consumer adds peers from the libp2p (trio) thread while the
    peering loop reads on asyncio. Gossiped addresses are only accepted for the peer that
    signed the message, so nobody can point others at a third party's ID.
    """

    def __init__(self, policy: MultiaddrPolicy, self_id: str = "") -> None:
        self.policy, self.self_id = policy, self_id
        self._peers: dict[str, BootstrapPeer] = {}
        self._lock = threading.Lock()

    def add(self, peer: BootstrapPeer) -> None:
        if peer.peer_id == self.self_id:
            return
        with self._lock:
            self._peers[peer.peer_id] = peer

    def learn(self, peer_id: str, multiaddrs: Sequence[str], name: str = "") -> bool:
        """Add a peer announced over gossip; returns False if none of its addresses pass."""
        addrs = self.policy.filter(multiaddrs, peer_id).multiaddrs
        if not addrs or peer_id == self.self_id:
            return False
        with self._lock:
            known = self._peers.get(peer_id)
            if known is not None and known.multiaddrs == addrs:
                return True
            self._peers[peer_id] = BootstrapPeer(
                peer_id=peer_id,
                name=name or peer_id[-8:],
                priority=0,
                multiaddr=addrs[0],
                multiaddrs=addrs,
            )
        return True

    def peers(self) -> list[BootstrapPeer]:
        with self._lock:
            return list(self._peers.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._peers)
