"""Keeping the agent in one connected mesh.

Each agent dials its successor on a ring of all known peer IDs (sorted), plus random
others until it has ``target_peers`` connections. The ring alone makes the agent graph
connected once everyone knows the list; the random chords keep its diameter small. So a
message reaches the monitor even when the monitor is not connected to its sender.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Sequence

import httpx
from multiaddr import Multiaddr
from pydantic import ValidationError

from chorus_agent.metrics import AgentMetrics
from meshcommon.models import BootstrapPeer, BootstrapResponse
from meshcommon.multiaddr_policy import MultiaddrPolicy, RejectedAddr
from meshcommon.p2p import MeshRuntime

log = logging.getLogger(__name__)


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


def static_peers(multiaddrs: Sequence[str], policy: MultiaddrPolicy) -> list[BootstrapPeer]:
    """Bootstrap peers from configured ``.../p2p/<id>`` multiaddrs (invalid ones skipped)."""
    by_id: dict[str, list[str]] = {}
    for addr in multiaddrs:
        try:
            peer_id = Multiaddr(addr).get_peer_id()
        except Exception as exc:
            log.warning("static bootstrap peer %r skipped: invalid multiaddr (%s)", addr, exc)
            continue
        if not peer_id:
            log.warning("static bootstrap peer %r skipped: no /p2p/<peer_id>", addr)
            continue
        verdict = policy.evaluate(addr, peer_id)
        if isinstance(verdict, RejectedAddr):
            log.warning("static bootstrap peer %r skipped: %s", addr, verdict.reason)
            continue
        by_id.setdefault(peer_id, []).append(verdict.multiaddr)
    return [
        BootstrapPeer(
            peer_id=pid, name=pid[-8:], priority=i + 1, multiaddr=addrs[0], multiaddrs=addrs
        )
        for i, (pid, addrs) in enumerate(by_id.items())
    ]


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


class Peering:
    """Fetches the bootstrap list and dials peers, every ``interval`` seconds."""

    def __init__(
        self,
        runtime: MeshRuntime,
        http: httpx.AsyncClient,
        metrics: AgentMetrics,
        policy: MultiaddrPolicy,
        book: PeerBook,
        *,
        whoosh_url: str,
        static: Sequence[str],
        target_peers: int,
        interval_s: float,
    ) -> None:
        self.runtime, self.http, self.metrics, self.policy = runtime, http, metrics, policy
        self.whoosh_url = whoosh_url.rstrip("/")
        self.book = book
        for peer in static_peers(static, policy):
            book.add(peer)
        self.target_peers, self.interval_s = target_peers, interval_s
        self.first_connection = asyncio.Event()
        self._whoosh_ok: bool | None = None

    async def run_forever(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # a bad round must not end peering
                log.exception("peering round failed")
            # Poll fast until the first connection, then at the configured pace.
            await asyncio.sleep(
                self.interval_s if self.first_connection.is_set() else min(1.0, self.interval_s)
            )

    async def fetch_whoosh(self) -> list[BootstrapPeer]:
        if not self.whoosh_url:
            return []
        url = f"{self.whoosh_url}/api/v1/bootstrap-peers"
        try:
            resp = await self.http.get(url)
            resp.raise_for_status()
            peers = BootstrapResponse.model_validate_json(resp.content).bootstrap_peers
        except (httpx.HTTPError, ValidationError, ValueError) as exc:
            self.metrics.bootstrap_fetch.labels(result="error").inc()
            if self._whoosh_ok is not False:
                log.warning(
                    "WHOOSH bootstrap list unavailable (%s: %s); using %d known peers",
                    type(exc).__name__,
                    str(exc)[:200],
                    len(self.book),
                )
            self._whoosh_ok = False
            return []
        self.metrics.bootstrap_fetch.labels(result="ok").inc()
        if self._whoosh_ok is not True:
            log.info("WHOOSH bootstrap list: %d peers", len(peers))
        self._whoosh_ok = True
        return peers

    async def round(self) -> None:
        for peer in await self.fetch_whoosh():
            self.book.add(peer)
        snap = await self.runtime.snapshot()
        connected = set(snap.connected_peers)
        if connected:
            self.first_connection.set()
        targets = choose_dial_targets(
            self.runtime.peer_id, self.book.peers(), connected, self.target_peers
        )
        if not targets:
            return
        outcomes = await asyncio.gather(
            *(
                self.runtime.connect(
                    p.peer_id, self.policy.filter(p.multiaddrs, p.peer_id).multiaddrs
                )
                for p in targets
            )
        )
        for peer, outcome in zip(targets, outcomes, strict=True):
            for failure in outcome.failures:
                self.metrics.dial_failures.labels(reason=failure.reason).inc()
            if outcome.connected:
                self.metrics.dials.labels(result="ok").inc()
                self.first_connection.set()
            else:
                self.metrics.dials.labels(result="failed").inc()
                causes = (
                    "; ".join(f"{f.multiaddr}: {f.reason} ({f.detail})" for f in outcome.failures)
                    or "no routable multiaddr"
                )
                log.warning("dial %s (%s) failed: %s", peer.name, peer.peer_id, causes)
