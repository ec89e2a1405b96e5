"""Configured bootstrap multiaddrs (``/ip4/10.0.0.5/tcp/9000/p2p/12D3KooW...``) as bootstrap
entries: one per peer ID, every address of it kept so a dialler can fail over."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from multiaddr import Multiaddr

from meshcommon.models import BootstrapPeer
from meshcommon.multiaddr_policy import REASON_INVALID, REASON_MISSING_PEER_ID, RejectedAddr

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaticPeers:
    peers: tuple[BootstrapPeer, ...] = ()
    rejected: tuple[RejectedAddr, ...] = ()


def parse_static_peers(multiaddrs: Sequence[str]) -> StaticPeers:
    """Group valid ``.../p2p/<peer_id>`` multiaddrs by peer ID; skip (and log) the others.

    Only the form is checked here; which addresses are worth dialling is the policy's
    decision, taken when dialling.
    """
    by_peer: dict[str, list[str]] = {}
    rejected: list[RejectedAddr] = []
    for addr in multiaddrs:
        try:
            peer_id = Multiaddr(addr).get_peer_id()
        except Exception as exc:  # the multiaddr library raises several types
            rejected.append(RejectedAddr(addr, REASON_INVALID, str(exc)[:200]))
            continue
        if not peer_id:
            rejected.append(RejectedAddr(addr, REASON_MISSING_PEER_ID, "no /p2p/<peer_id>"))
            continue
        by_peer.setdefault(peer_id, []).append(addr)
    for bad in rejected:
        log.warning(
            "static bootstrap peer %r skipped: %s (%s)", bad.multiaddr, bad.reason, bad.detail
        )
    peers = tuple(
        BootstrapPeer(
            peer_id=pid,
            name=f"static-{pid[-8:]}",
            priority=i,
            multiaddr=addrs[0],
            multiaddrs=addrs,
        )
        for i, (pid, addrs) in enumerate(by_peer.items(), start=1)
    )
    return StaticPeers(peers, tuple(rejected))
