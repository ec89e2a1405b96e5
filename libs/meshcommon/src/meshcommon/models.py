"""Wire formats, as pydantic models: the contracts between the three services.

Field names are the ones existing CHORUS deployments use (``peer_id``, ``multiaddrs``,
``connected_peers``, ``gossipsub_topics``, ``node_id``...). Fields are only ever added,
never renamed, and unknown fields are ignored when parsing, so old and new peers keep
understanding each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class PnetRefusalRecord(WireModel):
    """One connection the libp2p private network refused (who knocked without the key)."""

    at: float = Field(description="Unix time of the refusal")
    direction: str = Field(description="inbound (a peer dialled us) or outbound (we dialled)")
    reason: str = Field(description="wrong_key, no_key, closed or timeout")
    remote: str = Field(default="", description="The far end, ip:port")


class PrivateNetworkHealth(WireModel):
    """What every libp2p host's ``/api/health`` says of its private network (the agent's
    and the monitor's): whether the mesh is closed, and whom it refused."""

    private_network: bool = Field(
        default=False,
        description="A libp2p private network (swarm.key) closes the mesh: only peers with "
        "the key connect. false: any libp2p peer that reaches the p2p port can join",
    )
    pnet_refused: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Connections the private network refused: {inbound|outbound: {wrong_key|"
        "no_key|closed|timeout: count}}",
    )
    pnet_refused_recent: list[PnetRefusalRecord] = Field(
        default_factory=list,
        description="The latest refusals (at most 16, oldest first), with the far end",
    )


class AgentHealth(PrivateNetworkHealth):
    """Agent ``GET /api/health``."""

    peer_id: str
    multiaddrs: list[str] = Field(
        default_factory=list, description="Routable multiaddrs, each ending in /p2p/<peer_id>"
    )
    connected_peers: int = 0
    gossipsub_topics: list[str] = Field(default_factory=list)
    # Who and what the agent is, and how long it has been up:
    agent_id: str = ""
    name: str = ""
    version: str = ""
    capabilities: list[str] = Field(default_factory=list)
    specialization: str = ""
    status: str = "ready"
    uptime_seconds: float = 0.0
    peers: list[str] = Field(default_factory=list, description="Peer IDs currently connected")
    known_peers: int = Field(default=0, description="Peers known from WHOOSH, config and gossip")
    rejected_multiaddrs: list[dict[str, str]] = Field(
        default_factory=list, description="Local addresses not advertised, with the reason"
    )
    # How the agent is doing, in the words all three services use (meshcommon.health);
    # ``status`` above keeps its own meaning (ready, isolated, no_routable_address).
    health: str = Field(
        default="ok",
        description="ok; degraded (HTTP 200: isolated, stale bootstrap list...); failing "
        "(HTTP 503: the libp2p node is gone or the peering loop is stuck; restart it)",
    )
    reasons: list[str] = Field(default_factory=list, description="Codes of the problems")
    problems: list[str] = Field(
        default_factory=list, description="Each problem as 'code: what it means here'"
    )
    # Added for the closed mesh: proof that the addresses above are this peer's own.
    peer_record: str | None = Field(
        default=None,
        description="The agent's libp2p signed peer record, base64: a signed envelope "
        "(RFC 0002, domain libp2p-peer-record, payload type 0x0301) of a PeerRecord "
        "(RFC 0003: peer_id, seq = unix ns when made, addresses = multiaddrs without "
        "/p2p/), signed with the key of peer_id. WHOOSH lists only the addresses it signs. "
        "None: an agent that predates signed records",
    )
    # Validation before forwarding (GossipSub v1.1 penalties): what WHOOSH and the doctor
    # need to name a peer that sends junk; the details are in GET /api/v1/mesh (scoring).
    graylisted_peers: list[str] = Field(
        default_factory=list,
        description="Peer IDs this agent's GossipSub graylists now (invalid messages): "
        "their RPCs are ignored until their score decays",
    )
    gossip_rejected: dict[str, int] = Field(
        default_factory=dict,
        description="Gossip messages this agent rejected before forwarding, by reason",
    )


class Claimant(WireModel):
    """One host that claims a peer ID another host claims too (``BootstrapPeer.conflict``)."""

    name: str
    url: str = Field(description="Where WHOOSH found it (its health endpoint's base URL)")
    multiaddrs: list[str] = Field(description="The routable multiaddrs this host reported")
    signed: bool | None = Field(
        default=None,
        description="True: this host proved the peer ID with a signed peer record (a "
        "cloned key); False: listed without one (WHOOSH_UNSIGNED_HEALTH=accept); None: a "
        "WHOOSH that predates signed records",
    )
    record_seq: int | None = Field(default=None, description="seq of the host's record")


class BootstrapPeer(WireModel):
    """One entry of WHOOSH ``GET /api/v1/bootstrap-peers``: one per peer ID."""

    peer_id: str
    name: str
    priority: int = Field(description="1 is the most preferred peer")
    multiaddr: str = Field(description="The preferred multiaddr")
    multiaddrs: list[str] = Field(description="All routable multiaddrs, preferred first")
    conflict: bool = Field(
        default=False,
        description="Hosts that are not one agent claim this peer ID: at most one of them "
        "holds its key. Their addresses are in claimants, each host's apart; a dialler "
        "finds out which one is real with the libp2p handshake, which fails with "
        "peer_id_mismatch at an impostor. multiaddrs interleaves the claimants' addresses, "
        "so a client that ignores claimants still reaches the real one.",
    )
    claimants: list[Claimant] = Field(
        default_factory=list, description="With conflict: every host claiming the peer ID"
    )
    signed: bool | None = Field(
        default=None,
        description="True: every address listed is signed by the peer ID's key (its "
        "signed peer record); False: listed without a record (WHOOSH_UNSIGNED_HEALTH="
        "accept); None: a WHOOSH that predates signed records",
    )
    record_seq: int | None = Field(
        default=None,
        description="seq of the newest signed peer record listed (unix ns when the agent "
        "made it); None without one",
    )


class DiscoverySummary(WireModel):
    """Expected versus what answered: a partial discovery is a number, never silent."""

    expected: int | None = Field(
        default=None, description="Agents the discovery source says should exist"
    )
    discovered: int = Field(default=0, description="Distinct targets found by discovery")
    healthy: int = Field(default=0, description="Distinct peers that answered /api/health")
    unreachable: int = 0
    missing: int = Field(default=0, description="expected - healthy, never negative")
    left: int = Field(default=0, description="Peers that left on purpose, listed under 'left'")


# Why a peer left on purpose (``LeftPeer.reason``): the orchestrator stopped its task because
# the service was scaled down, its node drained, or the service updated or rolled back.
LEFT_SCALED_DOWN: Final = "scaled_down"
LEFT_NODE_DRAINED: Final = "node_drained"
LEFT_UPDATED: Final = "updated"
LEFT_ROLLED_BACK: Final = "rolled_back"


class LeftPeer(WireModel):
    """A peer that is gone on purpose, not lost: clients stop expecting it instead of
    reporting it missing. A crashed agent or a lost node is never listed here."""

    peer_id: str
    name: str
    reason: str = Field(description="scaled_down, node_drained, updated or rolled_back")
    at: datetime = Field(description="When WHOOSH saw the peer's task stopped")


class PeerViewInfo(WireModel):
    """Whose view of the bootstrap list an answer is (``GET /api/v1/bootstrap-peers/view``)."""

    peer_id: str = Field(description="The peer the view was chosen for")
    k: int = Field(description="Random peers asked for")
    successor: str | None = Field(
        description="Its ring successor: the next listed peer ID in sorted order (wrapping), "
        "the one it dials first so that the agents' graph stays connected"
    )
    predecessor: str | None = Field(description="The previous listed peer ID on the ring")
    total: int = Field(description="Peers in the whole list")


class BootstrapResponse(WireModel):
    bootstrap_peers: list[BootstrapPeer]
    count: int
    updated_at: datetime | None = None
    summary: DiscoverySummary = Field(default_factory=DiscoverySummary)
    left: list[LeftPeer] = Field(
        default_factory=list,
        description="Peers that left on purpose recently (none of them is in bootstrap_peers)",
    )
    view: PeerViewInfo | None = Field(
        default=None,
        description="Only in a per-agent view (GET /api/v1/bootstrap-peers/view): whose view "
        "it is; bootstrap_peers then holds its ring neighbours and k random peers, numbered "
        "in that order, count their number, and left is empty. null: the whole list",
    )


class AvailabilityMessage(WireModel):
    """Broadcast by every agent on ``CHORUS/coordination/v1`` (every 30 s by default)."""

    type: Literal["availability"] = "availability"
    node_id: str
    available_for_work: bool
    current_tasks: int
    max_tasks: int
    last_activity: datetime
    status: str
    timestamp: datetime = Field(default_factory=utcnow)
    # Added: lets the monitor name the agent and draw the mesh topology.
    name: str = ""
    version: str = ""
    peers: list[str] = Field(default_factory=list, description="Peer IDs connected to node_id")
    multiaddrs: list[str] = Field(
        default_factory=list,
        description="node_id's routable multiaddrs: agents learn each other from gossip, "
        "so the mesh keeps growing and healing without WHOOSH",
    )
    # Any JSON here: a malformed report is refused by the monitor on its own (counted, with a
    # reason), not the whole broadcast by every agent's validator.
    neighbours: Any = Field(
        default=None,
        description="What node_id sees of each connected peer, compact and within a "
        "budget (meshcommon.neighbours): topics, identify, link quality, traffic",
    )


class MonitorLogRecord(WireModel):
    """One line of the monitor's JSON-lines log: one received gossip message."""

    timestamp: datetime
    topic: str
    from_: str = Field(alias="from", description="Peer ID of the message's origin")
    type: str
    payload: Any = None
    seqno: str = ""

    def to_json_line(self) -> str:
        return self.model_dump_json(by_alias=True)
