"""Dialling a peer, bounded whatever it advertises, and proving who holds a key.

Both report the root cause of a failure (``errors``) as fields: a reason, the detail for
people, and for a peer-ID mismatch the peer the address really answered with.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any, cast

import trio
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from multiaddr import Multiaddr
from multiaddr.protocols import P_P2P

from meshcommon.limits import MAX_MULTIADDRS_PER_PEER, REASON_TOO_MANY_MULTIADDRS
from meshcommon.p2p.errors import REASON_PEER_ID_MISMATCH, answered_by, describe_dial_error
from meshcommon.p2p.peers import is_connected, parse_peer_id
from meshcommon.p2p.types import DialFailure, DialOutcome, KeyProof, NodeConfig

REASON_DEADLINE = "deadline"  # the peer's dial deadline passed before this address was tried


def failure(multiaddr: str, exc: BaseException) -> DialFailure:
    """A failed dial of ``multiaddr`` as fields, from the root cause of ``exc``."""
    reason, detail = describe_dial_error(exc)
    met = answered_by(exc) if reason == REASON_PEER_ID_MISMATCH else None
    return DialFailure(multiaddr, reason, detail, met)


class Dialer:
    """Dials for one host: one dial per peer at a time, each bounded (``connect``), and
    the security handshake alone (``prove_key``)."""

    def __init__(self, host: Any, config: NodeConfig, own_peer_id: str) -> None:
        self._host = host
        self._config = config
        self._own = own_peer_id
        self._locks: dict[str, trio.Lock] = {}

    async def connect(self, peer_id: str, multiaddrs: Sequence[str]) -> DialOutcome:
        """Dial ``peer_id`` trying each multiaddr in turn; every failure is kept with
        its root cause (peer-ID mismatch, refused, timeout...).

        Bounded whatever the peer advertises: at most ``MAX_MULTIADDRS_PER_PEER``
        addresses are tried, each within ``dial_timeout_s``, all of them within
        ``dial_deadline_s`` (py-libp2p's ``dial_peer`` has neither bound: 5,000 addresses
        that hang would take hours)."""
        started = time.monotonic()
        if peer_id == self._own:
            return DialOutcome(
                peer_id,
                connected=False,
                failures=(DialFailure("", "self", "refusing to dial our own peer ID"),),
            )
        try:
            pid = parse_peer_id(peer_id)
        except ValueError as exc:
            return DialOutcome(
                peer_id, False, failures=(DialFailure("", "invalid_peer_id", str(exc)),)
            )
        lock = self._locks.setdefault(peer_id, trio.Lock())
        try:
            async with lock:
                return await self._dial(pid, peer_id, multiaddrs, started)
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                # Locks live while dials are in flight, not for every peer ever seen.
                self._locks.pop(peer_id, None)

    async def _dial(
        self, pid: ID, peer_id: str, multiaddrs: Sequence[str], started: float
    ) -> DialOutcome:
        """Try each multiaddr in turn (the caller holds this peer's dial lock)."""
        host = self._host
        if is_connected(host, pid):
            return DialOutcome(peer_id, True, already_connected=True)
        failures: list[DialFailure] = []
        addrs = list(multiaddrs)
        if len(addrs) > MAX_MULTIADDRS_PER_PEER:
            failures.append(
                DialFailure(
                    "",
                    REASON_TOO_MANY_MULTIADDRS,
                    f"{len(addrs)} multiaddrs; only the first {MAX_MULTIADDRS_PER_PEER} tried",
                )
            )
            addrs = addrs[:MAX_MULTIADDRS_PER_PEER]
        network = host.get_network()
        cfg = self._config
        deadline = trio.current_time() + cfg.dial_deadline_s
        for tried, addr in enumerate(addrs):
            left = deadline - trio.current_time()
            if left <= 0:
                failures.append(
                    DialFailure(
                        "",
                        REASON_DEADLINE,
                        f"{len(addrs) - tried} of {len(addrs)} multiaddrs not tried: the "
                        f"peer's {cfg.dial_deadline_s:g} s dial deadline passed",
                    )
                )
                break
            try:
                ma = Multiaddr(addr)
                named = ma.get_peer_id()
                if named is not None and named != peer_id:
                    # Dialling it could only end in PeerIDMismatchesPubkey.
                    failures.append(
                        DialFailure(
                            addr, REASON_PEER_ID_MISMATCH, f"address names {named}, not {peer_id}"
                        )
                    )
                    continue
                # With or without a /p2p/ suffix: dial the transport part.
                transport_addr = ma.decapsulate_code(P_P2P) if named is not None else ma
                # One second past py-libp2p's own dial timeout, so that its clearer error
                # usually comes first; never past the peer's deadline.
                with trio.fail_after(min(cfg.dial_timeout_s + 1, left)):
                    await network.dial_addr(transport_addr, pid)
            except Exception as exc:
                failures.append(failure(addr, exc))
                continue
            host.get_peerstore().add_addrs(pid, [transport_addr], 3600)
            elapsed = (time.monotonic() - started) * 1000
            return DialOutcome(peer_id, True, addr, failures=tuple(failures), elapsed_ms=elapsed)
        elapsed = (time.monotonic() - started) * 1000
        return DialOutcome(peer_id, False, failures=tuple(failures), elapsed_ms=elapsed)

    async def prove_key(self, peer_id: str, multiaddr: str) -> KeyProof:
        """Whether the host at ``multiaddr`` holds ``peer_id``'s key: the libp2p security
        handshake (noise) alone, then hang up.

        Unlike ``connect``, no connection is added to the swarm: it works while a
        connection to the real holder is open (``connect`` would return at once), and
        the host tested never becomes a peer. What tells two hosts claiming one peer ID
        apart (``BootstrapPeer.conflict``): an impostor fails with ``peer_id_mismatch``,
        naming the peer ID its key belongs to (``answered_by``)."""
        try:
            pid = parse_peer_id(peer_id)
        except ValueError as exc:
            return KeyProof(peer_id, multiaddr, None, "invalid_peer_id", str(exc)[:300])
        swarm = cast(Swarm, self._host.get_network())
        raw: Any = None
        try:
            ma = Multiaddr(multiaddr)
            named = ma.get_peer_id()
            transport_addr = ma.decapsulate_code(P_P2P) if named is not None else ma
            transport = swarm.transport_manager.transport_for_dialing(transport_addr)
            if transport is None:
                return KeyProof(peer_id, multiaddr, None, "unsupported_transport", str(ma))
            with trio.fail_after(self._config.dial_timeout_s):
                raw = await transport.dial(Multiaddr(f"{transport_addr}/p2p/{peer_id}"))
                secured = await swarm.upgrader.upgrade_security(raw, True, pid)
                raw = secured
        except Exception as exc:
            failed = failure(multiaddr, exc)
            holds = False if failed.reason == REASON_PEER_ID_MISMATCH else None
            return KeyProof(
                peer_id, multiaddr, holds, failed.reason, failed.detail, failed.answered_by
            )
        finally:
            if raw is not None:
                with trio.move_on_after(1), contextlib.suppress(Exception):
                    await raw.close()
        return KeyProof(peer_id, multiaddr, True)
