"""The mesh seen from every agent: what an agent reports of its neighbours, on the wire
and as the monitor reads it.

Each agent's availability broadcast carries a compact ``neighbours`` list: per connected
peer what the monitor cannot see from where it stands (that peer's topic subscriptions,
its identify data, the quality of the link). The channel is the broadcast because the
monitor already hears every agent's broadcast (also from agents it is not connected to:
GossipSub forwards it), the message is signed by the agent's key and its ``node_id`` must
be the signer (``meshcommon.gossip.validate``), so an agent speaks only for its own links,
and it costs no new timer, connection or request: an idle agent wakes up no more often
than before. A pull by the monitor would need every agent's HTTP port reachable from the
monitor and one request per agent per period.

Budgets (peer-controlled input): an agent sends at most ``MAX_NEIGHBOURS`` entries, topics
and protocols per entry within their caps, strings within their lengths (unknown topics
first: a near-miss is what the monitor looks for, the mesh's own topics it knows). The
monitor refuses a report that breaks a budget or a type as a whole, with a reason
(``REJECT_*``), counted and logged once per agent and reason; the rest of the
availability message still counts.

Wire keys are short (the report rides every broadcast): ``p`` peer ID, ``av`` agent
version, ``pr`` protocols (only for a neighbour whose agent version differs from the
reporter's own: a peer of the same build speaks the same ones), ``t`` topics, ``to``
topics left out, ``rtt`` median ping RTT (ms) over the last pings, ``loss`` share of those
pings that failed, ``n`` their number, ``up`` connection uptime (s), ``bi``/``bo`` bytes
per second in/out, ``mi``/``mo`` gossip messages per second in/out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

MAX_NEIGHBOURS: Final = 32
MAX_TOPICS_PER_NEIGHBOUR: Final = 8
MAX_PROTOCOLS_PER_NEIGHBOUR: Final = 16
MAX_TOPIC_CHARS: Final = 128
MAX_AGENT_VERSION_CHARS: Final = 96
MAX_PROTOCOL_CHARS: Final = 64
# Pings an agent keeps per neighbour for the RTT median and the loss ratio.
PING_WINDOW: Final = 8

REJECT_NOT_A_LIST: Final = "not_a_list"
REJECT_TOO_MANY: Final = "too_many_neighbours"
REJECT_NOT_AN_OBJECT: Final = "entry_not_an_object"
REJECT_BAD_PEER_ID: Final = "bad_peer_id"
REJECT_BAD_VALUE: Final = "bad_value"  # a wrong type or a number out of range
REJECT_OVER_BUDGET: Final = "over_budget"  # a string too long, too many topics/protocols
REJECT_REASONS: Final = (
    REJECT_NOT_A_LIST,
    REJECT_TOO_MANY,
    REJECT_NOT_AN_OBJECT,
    REJECT_BAD_PEER_ID,
    REJECT_BAD_VALUE,
    REJECT_OVER_BUDGET,
)

_PEER_ID = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{30,100}$")  # base58btc

# Implementations an agent version is grouped by (a metric label: a fixed set).
IMPLEMENTATIONS: Final = (
    "go-libp2p",
    "js-libp2p",
    "py-libp2p",
    "rust-libp2p",
    "nim-libp2p",
    "jvm-libp2p",
    "other",
    "unknown",
)
# p2pd/0.1: the go-libp2p daemon (go-libp2p-daemon's p2pd sets that user agent; the
# interop tests run it, tests/interop/go). A prefix, as other names may contain "p2pd".
_IMPLEMENTATION_PREFIXES: Final = (("go-libp2p", ("p2pd/",)),)
_IMPLEMENTATION_HINTS: Final = (
    ("go-libp2p", ("go-libp2p", "kubo", "go-ipfs", "lotus", "prysm", "geth")),
    ("js-libp2p", ("js-libp2p", "helia", "lodestar")),
    ("py-libp2p", ("py-libp2p",)),
    ("rust-libp2p", ("rust-libp2p", "lighthouse", "forest")),
    ("nim-libp2p", ("nim-libp2p", "nimbus")),
    ("jvm-libp2p", ("jvm-libp2p", "teku")),
)


def implementation_of(agent_version: str) -> str:
    """The libp2p implementation an identify agent version names (``IMPLEMENTATIONS``):
    ``go-libp2p`` for go-libp2p's default ``github.com/libp2p/go-libp2p`` and for kubo,
    ``go-libp2p`` for the go-libp2p daemon's ``p2pd/0.1``, ``js-libp2p`` for
    ``js-libp2p/2.9.0 UserAgent=node/20``...; ``unknown`` when empty."""
    text = agent_version.strip().lower()
    if not text:
        return "unknown"
    for name, prefixes in _IMPLEMENTATION_PREFIXES:
        if text.startswith(prefixes):
            return name
    for name, hints in _IMPLEMENTATION_HINTS:
        if any(h in text for h in hints):
            return name
    return "other"


@dataclass(frozen=True)
class Neighbour:
    """One neighbour as an agent sees it."""

    peer_id: str
    agent_version: str = ""  # identify; "" until known
    protocols: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()  # subscriptions it announced to the agent
    topics_omitted: int = 0
    rtt_ms: float | None = None  # median of the last pings that answered
    loss: float | None = None  # share of the last pings that failed (None: no ping yet)
    pings: int = 0
    uptime_s: float | None = None  # age of the connection
    bytes_in_per_s: float | None = None
    bytes_out_per_s: float | None = None
    messages_in_per_s: float | None = None
    messages_out_per_s: float | None = None

    @property
    def implementation(self) -> str:
        return implementation_of(self.agent_version)

    def to_wire(self) -> dict[str, Any]:
        """The compact form in the availability broadcast (empty fields left out)."""
        out: dict[str, Any] = {"p": self.peer_id}
        if self.agent_version:
            out["av"] = self.agent_version
        if self.protocols:
            out["pr"] = list(self.protocols)
        if self.topics:
            out["t"] = list(self.topics)
        if self.topics_omitted:
            out["to"] = self.topics_omitted
        for key, value in (
            ("rtt", self.rtt_ms),
            ("loss", self.loss),
            ("up", self.uptime_s),
            ("bi", self.bytes_in_per_s),
            ("bo", self.bytes_out_per_s),
            ("mi", self.messages_in_per_s),
            ("mo", self.messages_out_per_s),
        ):
            if value is not None:
                out[key] = round(value, 3 if key in ("rtt", "loss") else 1)
        if self.pings:
            out["n"] = self.pings
        return out

    def to_dict(self) -> dict[str, Any]:
        """The long form the monitor's API shows."""
        return {
            "peer_id": self.peer_id,
            "agent_version": self.agent_version or None,
            "implementation": self.implementation,
            "protocols": list(self.protocols),
            "topics": list(self.topics),
            "topics_omitted": self.topics_omitted,
            "rtt_ms": self.rtt_ms,
            "loss": self.loss,
            "pings": self.pings,
            "uptime_s": self.uptime_s,
            "bytes_in_per_s": self.bytes_in_per_s,
            "bytes_out_per_s": self.bytes_out_per_s,
            "messages_in_per_s": self.messages_in_per_s,
            "messages_out_per_s": self.messages_out_per_s,
        }


def fit_topics(topics: Sequence[str], known: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """The topics an agent reports for one neighbour: within the budget, unknown ones
    first (a near-miss is what the monitor looks for), a too-long name left out and
    counted with the rest."""
    usable = [t for t in topics if len(t) <= MAX_TOPIC_CHARS]
    usable.sort(key=lambda t: (t in known, t))
    kept = tuple(usable[:MAX_TOPICS_PER_NEIGHBOUR])
    return kept, len(topics) - len(kept)


class RejectedReport(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _number(entry: dict[str, Any], key: str, high: float) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RejectedReport(REJECT_BAD_VALUE, f"{key}: not a number")
    if not math.isfinite(value) or not 0 <= value <= high:
        raise RejectedReport(REJECT_BAD_VALUE, f"{key}: {value!r} outside 0..{high:g}")
    return float(value)


def _strings(entry: dict[str, Any], key: str, most: int, chars: int) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RejectedReport(REJECT_BAD_VALUE, f"{key}: not a list of strings")
    if len(value) > most:
        raise RejectedReport(REJECT_OVER_BUDGET, f"{key}: {len(value)} > {most}")
    if any(len(v) > chars for v in value):
        raise RejectedReport(REJECT_OVER_BUDGET, f"{key}: a string over {chars} characters")
    return tuple(value)


def _entry(raw: Any) -> Neighbour:
    if not isinstance(raw, dict):
        raise RejectedReport(REJECT_NOT_AN_OBJECT, f"got {type(raw).__name__}")
    peer = raw.get("p")
    if not isinstance(peer, str) or not _PEER_ID.match(peer):
        raise RejectedReport(REJECT_BAD_PEER_ID, repr(peer)[:60])
    agent = raw.get("av", "")
    if not isinstance(agent, str):
        raise RejectedReport(REJECT_BAD_VALUE, "av: not a string")
    if len(agent) > MAX_AGENT_VERSION_CHARS:
        raise RejectedReport(REJECT_OVER_BUDGET, f"av: over {MAX_AGENT_VERSION_CHARS} chars")
    omitted, pings = raw.get("to", 0), raw.get("n", 0)
    for key, value in (("to", omitted), ("n", pings)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
            raise RejectedReport(REJECT_BAD_VALUE, f"{key}: not a count")
    return Neighbour(
        peer_id=peer,
        agent_version=agent,
        protocols=_strings(raw, "pr", MAX_PROTOCOLS_PER_NEIGHBOUR, MAX_PROTOCOL_CHARS),
        topics=_strings(raw, "t", MAX_TOPICS_PER_NEIGHBOUR, MAX_TOPIC_CHARS),
        topics_omitted=omitted,
        rtt_ms=_number(raw, "rtt", 600_000),
        loss=_number(raw, "loss", 1),
        pings=pings,
        uptime_s=_number(raw, "up", 10 * 365 * 86400),
        bytes_in_per_s=_number(raw, "bi", 1e12),
        bytes_out_per_s=_number(raw, "bo", 1e12),
        messages_in_per_s=_number(raw, "mi", 1e9),
        messages_out_per_s=_number(raw, "mo", 1e9),
    )


def parse_report(raw: Any) -> tuple[Neighbour, ...]:
    """An agent's ``neighbours`` field, validated; ``RejectedReport`` (with a
    ``REJECT_*`` reason) when it breaks a budget or a type anywhere: a correct agent
    never sends such a report, so none of it is trusted."""
    if not isinstance(raw, list):
        raise RejectedReport(REJECT_NOT_A_LIST, f"got {type(raw).__name__}")
    if len(raw) > MAX_NEIGHBOURS:
        raise RejectedReport(REJECT_TOO_MANY, f"{len(raw)} > {MAX_NEIGHBOURS}")
    return tuple(_entry(e) for e in raw)
