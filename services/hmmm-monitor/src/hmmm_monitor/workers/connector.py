"""Keeping a connection to every expected peer: dial whoever is due, in the background,
concurrently but bounded, and record each outcome with its real cause.

A round starts the dials that are due and waits for them only briefly
(``meshcommon.peer.dialing``): a peer whose addresses hang costs its own dial the node's
per-peer deadline, never the other dials or the next refresh round.

A peer ID that several hosts claim (``conflict``) is checked claimant by claimant with
the libp2p handshake alone (``prove_key``): the impostors are named with the evidence (the
peer ID their key really belongs to) and never dialled; the connection that counts is one
the handshake proved to be with the key's holder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from hmmm_monitor.domain.expected_peers import (
    REASON_NO_DIALABLE,
    VERDICT_HOLDS_KEY,
    VERDICT_IMPOSTOR,
    VERDICT_UNVERIFIED,
    ClaimantState,
    ExpectedPeers,
    PeerState,
)
from hmmm_monitor.metrics import MonitorMetrics
from meshcommon.logs import RateLimitedLog
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.p2p.types import DialOutcome, KeyProof, NodeSnapshot
from meshcommon.peer.dialing import ROUND_SETTLE_S, DialPool

log = logging.getLogger(__name__)

# A claimant proven (holder or impostor) is asked again after this long, or when its
# addresses change; an unverified one at the peer's next dial.
CLAIM_RECHECK_S = 300.0
# Addresses tried per claimant until one gives a definite answer.
CLAIM_ADDRS_TRIED = 4
# The whole check of one conflicted peer's claimants.
CLAIM_CHECK_BUDGET_S = 15.0


class Dialer(Protocol):
    """The part of MeshRuntime the connector uses (tests pass a fake)."""

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome: ...

    async def snapshot(self) -> NodeSnapshot: ...

    async def prove_key(self, peer_id: str, multiaddr: str) -> KeyProof: ...


class PeerConnector:
    def __init__(
        self,
        dialer: Dialer,
        policy: MultiaddrPolicy,
        expected: ExpectedPeers,
        *,
        concurrency: int = 16,
        metrics: MonitorMetrics | None = None,
        settle_s: float = ROUND_SETTLE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dialer, self.policy, self.expected, self.metrics = dialer, policy, expected, metrics
        self.dials = DialPool(concurrency)
        self.settle_s = settle_s
        self._clock = clock
        # One line per peer and reason per minute: a peer that keeps failing is visible in
        # the API and the metrics, not as a wall of identical log lines.
        self._failures = RateLimitedLog(log, interval_s=60.0)

    async def run_round(self) -> None:
        """Sync connection state from the node, start a dial for every peer that is due,
        and give the dials ``settle_s`` to finish (the rest go on in the background)."""
        snap = await self.dialer.snapshot()
        self.observe(snap.connected_peers)
        for s in self.expected.due():
            s.dialling = True
            self.dials.start(s.peer_id, lambda s=s: self._dial(s))
        await self.dials.settle(self.settle_s)

    async def aclose(self) -> None:
        await self.dials.aclose()

    def observe(self, connected_peers: Sequence[str]) -> None:
        for s in self.expected.observe(connected_peers):
            log.warning("lost connection to %s (%s)", s.name, s.peer_id)

    async def _dial(self, s: PeerState) -> None:
        try:
            if s.conflict:
                await self._check_claimants(s)
            await self._connect(s)
        finally:
            s.dialling = False

    async def _connect(self, s: PeerState) -> None:
        verdict = self.policy.filter(s.dial_multiaddrs(), s.peer_id)
        self.expected.mark_skipped(s, verdict.rejected)
        if not verdict.accepted:
            reasons = ", ".join(f"{r.multiaddr}: {r.reason}" for r in verdict.rejected)
            if s.impostors() and not reasons:
                reasons = "every address belongs to a proven impostor"
            self._failed(s, REASON_NO_DIALABLE, reasons or "no multiaddrs", [])
            return
        s.dial_attempts += 1
        try:
            outcome = await self.dialer.connect(s.peer_id, verdict.multiaddrs)
        except Exception as exc:  # the runtime stopped, etc.: keep the loop alive
            self._failed(s, "dial_error", f"{type(exc).__name__}: {exc}", [])
            return
        errors = [
            {"multiaddr": f.multiaddr, "reason": f.reason, "detail": f.detail}
            # A peer-ID mismatch names who answered (meshcommon fills it in).
            | ({"answered_by": f.answered_by} if f.answered_by else {})
            for f in outcome.failures
        ]
        self.expected.count_failures(s, errors)
        if outcome.connected:
            latency = None if outcome.already_connected else outcome.elapsed_ms
            self.expected.mark_connected(s, outcome.multiaddr, latency)
            s.last_dial_errors = errors  # earlier multiaddrs may have failed
            log.info(
                "connected to %s (%s) via %s in %.0f ms",
                s.name,
                s.peer_id,
                outcome.multiaddr,
                outcome.elapsed_ms,
            )
            return
        last = outcome.failures[-1] if outcome.failures else None
        self._failed(s, last.reason if last else "dial_error", last.detail if last else "", errors)

    async def _check_claimants(self, s: PeerState) -> None:
        """Prove, claimant by claimant, who holds ``s.peer_id``'s key (within a budget)."""
        now = self._clock()
        todo = [
            c
            for c in s.claimants
            if c.verdict == VERDICT_UNVERIFIED
            or c.checked_at is None
            or now - c.checked_at > CLAIM_RECHECK_S
        ]
        try:
            async with asyncio.timeout(CLAIM_CHECK_BUDGET_S):
                for claimant in todo:
                    await self._check_claimant(s, claimant)
        except TimeoutError:
            log.warning(
                "checking who holds %s's key took over %g s", s.peer_id, CLAIM_CHECK_BUDGET_S
            )

    async def _check_claimant(self, s: PeerState, claimant: ClaimantState) -> None:
        addrs = self.policy.filter(claimant.multiaddrs, s.peer_id).multiaddrs
        proof: KeyProof | None = None
        for addr in addrs[:CLAIM_ADDRS_TRIED]:
            try:
                proof = await self.dialer.prove_key(s.peer_id, addr)
            except Exception as exc:  # the runtime stopped: nothing proven
                proof = KeyProof(s.peer_id, addr, None, "dial_error", str(exc)[:300])
            if proof.holds_key is not None:
                break
        claimant.checked_at = self._clock()
        if proof is None:
            claimant.verdict, claimant.reason = VERDICT_UNVERIFIED, REASON_NO_DIALABLE
            claimant.evidence = "no address of this claimant passes the policy"
            return
        claimant.reason, claimant.evidence = proof.reason or None, proof.detail or None
        claimant.proven_multiaddr = proof.multiaddr if proof.holds_key is not None else None
        was = claimant.verdict
        if proof.holds_key:
            claimant.verdict = VERDICT_HOLDS_KEY
        elif proof.holds_key is False:
            claimant.verdict = VERDICT_IMPOSTOR
            if was != VERDICT_IMPOSTOR:
                log.warning(
                    "impostor: %s (%s) claims peer %s, but the handshake at %s proves "
                    "another key: %s",
                    claimant.name,
                    claimant.url,
                    s.peer_id,
                    proof.multiaddr,
                    proof.detail,
                )
        else:
            claimant.verdict = VERDICT_UNVERIFIED

    def _failed(self, s: PeerState, reason: str, detail: str, errors: list[dict[str, str]]) -> None:
        delay = self.expected.mark_failed(s, reason, detail, errors)
        if self.metrics is not None:
            self.metrics.dial_failures.labels(reason=reason).inc()
        self._failures.warning(
            (s.peer_id, reason),
            "dial %s (%s) failed: %s: %s (attempt %d, next in %.1f s)",
            s.name,
            s.peer_id,
            reason,
            detail,
            s.consecutive_failures,
            delay,
        )
