"""What a peer takes from a bootstrap list, whoever sent it: bounded. WHOOSH sends no more
than these budgets, but a list from elsewhere (an old or foreign WHOOSH, a cache written
by another version) might, and a dialler must never work through thousands."""

from __future__ import annotations

import logging

from meshcommon.limits import (
    MAX_CLAIMANTS_PER_PEER,
    MAX_LEFT_PEERS,
    MAX_MULTIADDRS_PER_PEER,
    REASON_TOO_MANY_MULTIADDRS,
)
from meshcommon.models import BootstrapResponse

log = logging.getLogger(__name__)


def within_budget(response: BootstrapResponse) -> BootstrapResponse:
    """Each entry with at most ``MAX_MULTIADDRS_PER_PEER`` addresses, at most
    ``MAX_CLAIMANTS_PER_PEER`` claimants with as many each, and at most ``MAX_LEFT_PEERS``
    peers that left (WHOOSH sends no more; a list from elsewhere might): a dialler never
    works through thousands."""
    peers = []
    for peer in response.bootstrap_peers:
        update: dict[str, object] = {}
        if len(peer.multiaddrs) > MAX_MULTIADDRS_PER_PEER:
            log.warning(
                "bootstrap entry %s lists %d multiaddrs; using the first %d (%s)",
                peer.peer_id,
                len(peer.multiaddrs),
                MAX_MULTIADDRS_PER_PEER,
                REASON_TOO_MANY_MULTIADDRS,
            )
            update["multiaddrs"] = peer.multiaddrs[:MAX_MULTIADDRS_PER_PEER]
        claimants = peer.claimants[:MAX_CLAIMANTS_PER_PEER]
        if claimants != peer.claimants or any(
            len(c.multiaddrs) > MAX_MULTIADDRS_PER_PEER for c in claimants
        ):
            update["claimants"] = [
                c.model_copy(update={"multiaddrs": c.multiaddrs[:MAX_MULTIADDRS_PER_PEER]})
                for c in claimants
            ]
        peers.append(peer.model_copy(update=update) if update else peer)
    left = response.left
    if len(left) > MAX_LEFT_PEERS:
        log.warning("bootstrap list names %d peers that left; using %d", len(left), MAX_LEFT_PEERS)
        left = left[:MAX_LEFT_PEERS]
    return response.model_copy(update={"bootstrap_peers": peers, "left": left})
