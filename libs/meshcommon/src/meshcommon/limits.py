"""Budgets for everything a peer controls: one definition each, shared by the services.

A peer decides how big its answers are, how many addresses it claims and how long it takes
to answer. Each of these has a limit here; what exceeds it is refused with a named reason
(counted in metrics, logged once), never processed at any cost.
"""

from __future__ import annotations

from typing import Final

import httpx

# Gossip: a larger payload is rejected (reason "oversized") before it is parsed.
MAX_MESSAGE_BYTES: Final = 64 * 1024
# An agent's GET /api/health answer (a handful of multiaddrs is ~2 KB).
MAX_HEALTH_BYTES: Final = 64 * 1024
# Multiaddrs one peer may advertise; a real host has a few. More: "too_many_multiaddrs".
MAX_MULTIADDRS_PER_PEER: Final = 32
# WHOOSH's bootstrap list (about 1 KB per agent): room for a few thousand agents.
MAX_BOOTSTRAP_BYTES: Final = 4 * 1024 * 1024
# Peers that left on purpose, listed with the bootstrap list (~150 bytes each): WHOOSH keeps
# the most recent ones, a client reads no more.
MAX_LEFT_PEERS: Final = 1024
# Topics one node's mesh view lists (the mesh has three; peers announce what they like).
MAX_MESH_VIEW_TOPICS: Final = 256
# Hosts claiming one peer ID that a bootstrap entry lists separately (a real key is on one
# host; a clone or two is an incident, more is an attack and changes nothing).
MAX_CLAIMANTS_PER_PEER: Final = 8
# Peers an agent remembers from gossip: anyone can mint peer IDs, so the book is capped and
# the peer heard of longest ago goes first.
MAX_KNOWN_PEERS: Final = 1024
# Gossip senders the monitor keeps statistics for (counts, seqno gaps, latency): the same
# reasoning, a few times the size of any real mesh.
MAX_TRACKED_SENDERS: Final = 4096
# Raw bytes of the recent messages the monitor keeps for /api/v1/messages: a count alone
# would let one sender of near-budget messages hold thousands of them (hundreds of MB);
# real broadcasts (~1 KB) reach the count long before this.
MAX_KEPT_MESSAGE_BYTES: Final = 16 * 1024 * 1024

REASON_TOO_MANY_MULTIADDRS: Final = "too_many_multiaddrs"
# Distinct gossip message ``type`` values kept as a metric label (the sender writes it);
# later ones are counted under "other", so a peer inventing types cannot grow the series.
MAX_MESSAGE_TYPE_LABELS: Final = 32


class BodyTooLarge(Exception):
    def __init__(self, limit: int, seen: int) -> None:
        super().__init__(f"body larger than {limit} bytes ({seen}+ bytes)")
        self.limit, self.seen = limit, seen


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed response, refusing more than ``limit`` bytes without
    reading them (a declared Content-Length over the limit is refused at once)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit, int(declared))
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit, size)
        chunks.append(chunk)
    return b"".join(chunks)
