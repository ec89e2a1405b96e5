"""What the libp2p node takes and hands out: plain values, importable without libp2p."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar

from meshcommon.config import PeerSettings
from meshcommon.gossip import DecodedGossip
from meshcommon.kademlia import DHT_PROTOCOL_ID, DhtBudget, DhtCounters
from meshcommon.limits import MAX_MESSAGE_BYTES
from meshcommon.topics import ALL_TOPICS

# Why the private network (meshcommon.p2p.pnet) refused a connection, and which way.
PNET_WRONG_KEY = "wrong_key"  # the peer has a private network, with another key
PNET_NO_KEY = "no_key"  # the peer has no private network: multistream in clear
PNET_CLOSED = "closed"  # EOF before the nonce and multistream header were complete
PNET_TIMEOUT = "timeout"  # they did not come within the budget (inbound)
PNET_REFUSAL_REASONS = (PNET_WRONG_KEY, PNET_NO_KEY, PNET_CLOSED, PNET_TIMEOUT)
PNET_DIRECTIONS = ("inbound", "outbound")
# What NodeCounters.idontwant counts (GossipSub v1.2), in message IDs.
# Why a connection to an unanswering peer was closed (meshcommon.p2p.liveness).
STALE_PING_FAILURES = "ping_failures"
STALE_REPLACED = "replaced"
STALE_REASONS = (STALE_PING_FAILURES, STALE_REPLACED)
IDONTWANT_KINDS = ("sent", "received", "honoured", "over_budget", "heard")


@dataclass(frozen=True)
class P2POverrides:
    """Which of meshcommon's replacements of py-libp2p 0.8.1 behaviour are on (all, by
    default). Each can be switched off alone, to measure it or to rule it out when
    something misbehaves: ``P2POverrides.parse("all,-coalesce")``; ``none`` is stock
    py-libp2p 0.8.1 behaviour (plus meshcommon's counting hooks). What each replaces, how
    it is installed and why: ``meshcommon.p2p.overrides.OVERRIDES`` (the one door)."""

    tcp: bool = True  # buffered socket reads (tcp.BufferedTCP)
    yamux: bool = True  # frame loop and go-yamux window updates (yamux.LeanYamux)
    inline: bool = True  # RPCs handled in the read loop, no task per message
    record: bool = True  # each peer's signed record verified once per distinct bytes
    sig: bool = True  # origin public keys cached; own publishes not re-verified
    # push_msg without the validation-cache step when validators are synchronous (or
    # none); "lean" before (nothing to do with lean.py), still accepted by parse()
    novalcache: bool = True
    noforward: bool = True  # no RPC built when there is nobody to forward to
    direct: bool = True  # messages handed to the consumer, no channel hop
    coalesce: bool = True  # RPCs queued for a peer written in one write
    mss: bool = True  # multistream-select handshake and protocol in one write
    ping: bool = True  # one ping stream per peer, reused (ping.Pinger)
    # GossipSub v1.1 graylist enforced (RPCs of a peer below the threshold ignored), P4
    # squared, scores kept across reconnects (scoring.MeshPeerScorer)
    graylist: bool = True
    noautodial: bool = True  # the swarm's AutoConnector replaced by one that dials nothing
    retry: bool = True  # one dial retry after 50 ms (upstream: 3, with backoff)
    outqueue: bool = True  # per-peer outbound queue of NodeConfig.outbound_queue (not 32)
    subqueue: bool = True  # subscription queue of NodeConfig.subscription_queue (not 32)
    # GossipSub v1.2 IDONTWANT as go and js send it: for messages of at least
    # NodeConfig.idontwant_min_bytes, to mesh peers but the forwarder; a budget per peer
    # per heartbeat; honoured also for RPCs already queued; counted (NodeCounters.idontwant)
    idontwant: bool = True
    # A pubsub stream that died with a dead connection while the peer already speaks on a
    # newer one: only our outbound stream moves to the live connection; upstream forgets
    # the subscriptions the peer just sent on the new one (and it never sends them again)
    stalestream: bool = True
    # GossipSub with the spec's fixed heartbeat and mesh bounds (py-libp2p's "adaptive"
    # health heuristics off) and opportunistic grafting as v1.1 says: every 60 heartbeats,
    # only when the mesh's median score is below the threshold (pubsub.MeshGossipSub)
    steadymesh: bool = True
    # A peer that sent us a message (a duplicate) is not sent it: what is still queued for
    # it loses that message, as if it had said IDONTWANT (pubsub.MeshGossipSub.heard)
    heard: bool = True

    # Former names, accepted by parse() (``*_P2P_OVERRIDES`` is a documented setting).
    ALIASES: ClassVar[dict[str, str]] = {"lean": "novalcache"}

    @classmethod
    def parse(cls, spec: str) -> P2POverrides:
        """``all`` (default), ``none``, ``tcp,yamux`` (only those) or ``all,-ping``."""
        raw = [n.strip() for n in spec.split(",") if n.strip()] or ["all"]
        names = [
            ("-" if n.startswith("-") else "") + cls.ALIASES.get(n.lstrip("-"), n.lstrip("-"))
            for n in raw
        ]
        known = {f.name for f in fields(cls)}
        unknown = {n.lstrip("-") for n in names} - known - {"all", "none"}
        if unknown:
            raise ValueError(
                f"unknown py-libp2p overrides {sorted(unknown)}; known: {sorted(known)}"
            )
        on = set(known) if "all" in names else set()
        on |= {n for n in names if n in known}
        on -= {n[1:] for n in names if n.startswith("-")}
        return cls(**{name: name in on for name in known})

    @staticmethod
    def spec_names() -> list[str]:
        return [f.name for f in fields(P2POverrides)]

    @property
    def spec(self) -> str:
        on = [f.name for f in fields(self) if getattr(self, f.name)]
        return "all" if len(on) == len(fields(self)) else ",".join(on) or "none"


ALL_OVERRIDES = P2POverrides()
NO_OVERRIDES = P2POverrides.parse("none")


@dataclass(frozen=True)
class NodeConfig:
    listen_host: str = "0.0.0.0"
    port: int = 9000
    topics: tuple[str, ...] = ALL_TOPICS
    identity_path: str | None = None
    identity_secret_file: str | None = None  # with identity_scope: a derived identity
    identity_scope: str = ""
    # GossipSub: the library's 120 s default heartbeat makes meshes form far too slowly.
    heartbeat_interval: int = 1
    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    # GossipSub v1.2: a new message at least this big is announced with IDONTWANT to our
    # mesh peers (js-libp2p: 512, go: 1024; for small messages the announcement costs
    # about what the duplicate it spares does); and at most this many message IDs a
    # peer's IDONTWANTs are kept per heartbeat (js-libp2p's 512), the rest counted.
    idontwant_min_bytes: int = 512
    idontwant_budget: int = 512
    # The library's 32-slot subscription queue drops bursts with only a log warning;
    # a bigger queue plus counted drops means nothing is lost silently.
    subscription_queue: int = 1024
    # Likewise the per-peer outbound queue (32 RPCs): a burst overflows it while
    # publish() keeps succeeding. Bigger, and what still overflows is counted.
    outbound_queue: int = 1024
    dial_timeout_s: float = 5.0  # one address: connect, security and muxer handshakes
    # One peer, all its addresses: a peer listing many addresses that all hang (a black
    # hole, a trickling handshake) costs this, not their number times dial_timeout_s.
    dial_deadline_s: float = 8.0
    ping_timeout_s: float = 5.0  # whole ping: open the stream, negotiate, round trip
    # A peer whose last this-many pings all failed has its connections closed (a host
    # that vanished without FIN/RST stays "connected" for ~15 min otherwise; liveness);
    # 0: never.
    ping_failures_to_close: int = 3
    overrides: P2POverrides = ALL_OVERRIDES
    # libp2p private network (meshcommon.p2p.pnet): the 32-byte keys, the one dials use
    # first, then the extra ones accepted inbound during a rotation; () = open mesh.
    pnet_keys: tuple[bytes, ...] = field(default=(), repr=False)
    # An inbound connection must send its pnet nonce and first bytes within this.
    pnet_accept_budget_s: float = 10.0
    pnet_setting: str = "PNET_KEY_FILE"  # the setting that closes the mesh, for the warning

    @property
    def private_network(self) -> bool:
        return bool(self.pnet_keys)

    # Validate every message on our topics before forwarding or delivering it
    # (meshcommon.gossip.validate, as a GossipSub topic validator) and score peers by the
    # invalid messages they send (meshcommon.p2p.scoring). Off for a bare node (tests,
    # tools that gossip raw bytes); the services turn it on (for_peer).
    validate_messages: bool = False
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # Kademlia peer discovery (meshcommon.p2p.dht): off for a bare node, the services
    # turn it on (for_peer). A server answers FIND_NODE; a client only asks.
    dht: bool = False
    dht_server: bool = True
    dht_protocol: str = DHT_PROTOCOL_ID
    dht_refresh_s: float = 600.0
    dht_budget: DhtBudget = field(default_factory=DhtBudget)

    @classmethod
    def for_peer(cls, settings: PeerSettings) -> NodeConfig:
        return cls(
            validate_messages=settings.validate_gossip,
            max_message_bytes=settings.max_message_bytes,
            listen_host=settings.p2p_host,
            port=settings.p2p_port,
            identity_path=settings.identity_path or None,
            identity_secret_file=settings.identity_secret_file or None,
            identity_scope=settings.identity_scope.strip(),
            overrides=P2POverrides.parse(settings.p2p_overrides),
            pnet_keys=tuple(k.key for k in settings.pnet_keys()),
            pnet_setting=f"{settings.model_config.get('env_prefix', '')}PNET_KEY_FILE",
            degree=settings.gossip_degree,
            # The same proportions as the default 6 / 4 / 12.
            degree_low=max(1, settings.gossip_degree * 2 // 3),
            degree_high=2 * settings.gossip_degree,
            idontwant_min_bytes=settings.idontwant_min_bytes,
            dht=settings.dht,
            dht_server=settings.dht_server,
            dht_protocol=settings.dht_protocol,
            dht_refresh_s=settings.dht_refresh_s,
            dht_budget=DhtBudget(request_timeout_s=settings.dht_request_timeout_s),
        )


@dataclass(frozen=True)
class ReceivedMessage:
    topic: str
    from_peer: str  # origin peer ID (base58), not the forwarder
    data: bytes
    seqno: str
    received_at: float  # unix time
    # With NodeConfig.validate_messages: the payload as the validator parsed it (parsed
    # once: the consumer uses this instead of decoding ``data`` again).
    decoded: DecodedGossip | None = None


@dataclass(frozen=True)
class RejectedMessage:
    """A message the validator refused: not forwarded, not delivered, counted."""

    topic: str
    from_peer: str  # origin (signer) peer ID
    forwarder: str  # the peer that sent it to us (the origin at the first hop)
    reason: str  # meshcommon.gossip REASON_*
    detail: str
    seqno: str
    received_at: float  # unix time


@dataclass(frozen=True)
class DialFailure:
    multiaddr: str
    reason: str
    detail: str
    # peer_id_mismatch: the peer ID whose key answered at that address (who is really
    # there), as the handshake established it; None otherwise or when not known.
    answered_by: str | None = None


@dataclass(frozen=True)
class DialOutcome:
    peer_id: str
    connected: bool
    multiaddr: str | None = None  # the address that worked
    already_connected: bool = False
    failures: tuple[DialFailure, ...] = ()
    elapsed_ms: float = 0.0


class PingError(Exception):
    """A ping that did not complete. ``reason``: ``not_connected`` (ping never dials),
    ``invalid_peer_id``, ``timeout`` or ``ping_failed`` (stream or protocol error)."""

    def __init__(self, peer_id: str, reason: str, detail: str) -> None:
        super().__init__(f"ping {peer_id}: {reason}: {detail}")
        self.peer_id = peer_id
        self.reason = reason
        self.detail = detail


# How many of the latest private-network refusals a node remembers (who knocked, and when).
MAX_RECENT_PNET_REFUSALS = 16


@dataclass(frozen=True)
class PnetRefusal:
    """One connection the private network refused: when (unix time), which way, why, and
    the far end (``ip:port``; empty when the transport did not say)."""

    at: float
    direction: str
    reason: str
    remote: str


@dataclass
class NodeCounters:
    """Running totals the node keeps in its own thread; read (copied) from any thread.
    Nothing the node drops or fails to process goes uncounted."""

    # Messages lost because a subscription queue was full, by topic.
    dropped_by_topic: Counter[str] = field(default_factory=Counter)
    # Messages GossipSub could not queue for a peer, by reason: its per-peer outbound
    # queue overflows under bursts while publish() succeeds.
    outbound_dropped: Counter[str] = field(default_factory=Counter)
    # Messages whose consumer callback raised, by topic.
    consumer_errors: Counter[str] = field(default_factory=Counter)
    # Connections the private network refused, by (direction, reason): inbound/outbound,
    # wrong_key, no_key, closed, timeout (meshcommon.p2p.pnet).
    pnet_refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    # The latest refusals themselves, oldest first (bounded: a flood keeps only the latest).
    pnet_recent: deque[PnetRefusal] = field(
        default_factory=lambda: deque(maxlen=MAX_RECENT_PNET_REFUSALS)
    )

    def pnet_refused_table(self) -> dict[str, dict[str, int]]:
        """``{direction: {reason: count}}`` (copied: the node adds in its own thread)."""
        table: dict[str, dict[str, int]] = {}
        for (direction, reason), count in dict(self.pnet_refused).items():
            table.setdefault(direction, {})[reason] = count
        return table

    # Messages the validator rejected (not forwarded, not delivered), by (topic, reason).
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    # GossipSub v1.1 scoring: RPCs ignored from graylisted peers, times a peer went below
    # the graylist threshold, peers below it now, and messages refused because their
    # forwarder's score was below the publish threshold.
    graylist_ignored_rpcs: int = 0
    graylistings: int = 0
    graylisted_peers: int = 0
    score_gated: int = 0
    # GossipSub v1.2 IDONTWANT, in message IDs: "sent" (announced to a peer), "received"
    # (kept from a peer), "honoured" (messages not sent to a peer that said it had them),
    # "over_budget" (a peer's IDs beyond NodeConfig.idontwant_budget in one heartbeat),
    # "heard" (messages not sent to a peer because it had sent them to us: override heard).
    idontwant: Counter[str] = field(default_factory=Counter)
    # Gossip messages received from / queued for each peer (keyed by libp2p ID, which
    # hashes its bytes: no base58 per message); read and pruned to the connected peers by
    # the neighbours report (meshcommon.p2p.neighbours).
    messages_in: Counter[Any] = field(default_factory=Counter)
    messages_out: Counter[Any] = field(default_factory=Counter)
    # Kademlia discovery: queries, requests, malformed messages by reason, table size.
    dht: DhtCounters = field(default_factory=DhtCounters)
    # Connections closed because their peer stopped answering, by reason (liveness):
    # ping_failures, replaced (a newer connection came and the old one did not answer).
    stale_closed: Counter[str] = field(default_factory=Counter)
    stale_dropped_jobs: int = 0  # such checks not done: their queue was full
    # (stalestream) our pubsub stream to a peer moved from a dead connection to its newer one
    pubsub_streams_moved: int = 0


@dataclass(frozen=True)
class NodeSnapshot:
    peer_id: str
    listen_port: int
    connected_peers: tuple[str, ...]
    topics: tuple[str, ...]
    mesh_peers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dropped_by_topic: dict[str, int] = field(default_factory=dict)
    outbound_dropped: dict[str, int] = field(default_factory=dict)
    trio_tasks: int = 0  # tasks alive in the node's trio thread (a leak shows here)
    private_network: bool = False  # a pnet key is configured (the mesh is closed)
    # Connections the private network refused: {direction: {reason: count}}.
    pnet_refused: dict[str, dict[str, int]] = field(default_factory=dict)
    pnet_recent: tuple[PnetRefusal, ...] = ()  # the latest refusals, oldest first
    # Validation: peers graylisted now (GossipSub scoring), messages rejected by reason.
    graylisted: tuple[str, ...] = ()
    rejected: dict[str, int] = field(default_factory=dict)
    # Dead connections closed, by reason (liveness: ping_failures, replaced).
    stale_closed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyProof:
    """Whether the host at ``multiaddr`` holds the key of ``peer_id``, as the libp2p
    security handshake established. ``holds_key`` is None when the handshake did not get
    that far (unreachable, timeout): nothing was proven either way."""

    peer_id: str
    multiaddr: str
    holds_key: bool | None
    reason: str = ""  # "" when proven; peer_id_mismatch, timeout, connection_refused...
    detail: str = ""  # the root cause, as text (for people)
    answered_by: str | None = None  # a mismatch: the peer ID the host's key belongs to


@dataclass(frozen=True)
class TopicMesh:
    """One topic as this node's GossipSub sees it."""

    topic: str
    subscribed: bool  # this node subscribes to it
    mesh: tuple[str, ...]  # peers we exchange full messages with (subscribed topics)
    fanout: tuple[str, ...]  # peers we publish to without subscribing
    subscribers: tuple[str, ...]  # peers that announced a subscription to it


@dataclass(frozen=True)
class ConnectionView:
    """One open connection: who, which way, from where, since when, how far."""

    peer_id: str
    direction: str  # inbound, outbound or unknown
    remote_addr: str | None  # /ip4/10.0.13.5/tcp/9000: the transport endpoint in use
    opened_at: float | None  # unix time
    rtt_ms: float | None = None  # our last libp2p ping to this peer
    rtt_at: float | None = None  # when that ping answered (unix time)


@dataclass(frozen=True)
class PeerScore:
    """One peer as this node's GossipSub scoring sees it (peers with a score or a
    graylisting on record; everyone else scores 0)."""

    peer_id: str
    score: float
    invalid_messages: dict[str, float]  # topic -> decayed P4 counter
    graylisted: bool
    graylisted_since: float | None = None  # unix time (the current or last graylisting)
    graylisted_until: float | None = None  # when the score is back above the threshold
    graylistings: int = 0  # times this peer went below the threshold
    rpcs_ignored: int = 0  # RPCs dropped while it was graylisted
    connected: bool = True

    def to_dict(self) -> dict[str, object]:
        def at(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

        return {
            "peer_id": self.peer_id,
            "score": self.score,
            "graylisted": self.graylisted,
            "graylisted_since": at(self.graylisted_since),
            "graylisted_until": at(self.graylisted_until),
            "graylistings": self.graylistings,
            "rpcs_ignored": self.rpcs_ignored,
            "invalid_messages": dict(self.invalid_messages),
            "connected": self.connected,
        }


@dataclass(frozen=True)
class MeshView:
    """The libp2p view of one node: per topic the GossipSub mesh, fanout and announced
    subscriptions (topics we do not subscribe to included: that is how a misspelt topic
    shows), and every connection. Topics beyond the budget are counted, not listed."""

    peer_id: str
    taken_at: float  # unix time
    topics: tuple[TopicMesh, ...]
    connections: tuple[ConnectionView, ...]
    topics_omitted: int = 0
    # GossipSub v1.1 scores: peers with a non-zero score or a graylisting on record,
    # graylisted and lowest first, within MAX_SCORED_PEERS_LISTED (the rest counted).
    scores: tuple[PeerScore, ...] = ()
    scores_omitted: int = 0
    graylist_threshold: float | None = None  # None: scoring is off
    # Validation (NodeConfig.validate_messages): messages rejected, topic -> reason -> n;
    # RPCs ignored from graylisted peers; messages refused by the publish-score gate.
    validating: bool = False
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    graylist_ignored_rpcs: int = 0
    graylistings: int = 0
    score_gated: int = 0

    def subscriptions(self) -> dict[str, tuple[str, ...]]:
        """Peer ID -> the topics it announced (within the listed topics)."""
        out: dict[str, list[str]] = {}
        for t in self.topics:
            for peer in t.subscribers:
                out.setdefault(peer, []).append(t.topic)
        return {peer: tuple(sorted(ts)) for peer, ts in out.items()}

    def to_dict(self, now: float | None = None) -> dict[str, object]:
        """The JSON of ``GET /api/v1/mesh`` (the agent's and the monitor's)."""
        at = self.taken_at if now is None else now
        return {
            "peer_id": self.peer_id,
            "topics": {
                t.topic: {
                    "subscribed": t.subscribed,
                    "mesh": list(t.mesh),
                    "fanout": list(t.fanout),
                    "subscribers": list(t.subscribers),
                }
                for t in self.topics
            },
            "topics_omitted": self.topics_omitted,
            "subscriptions": {p: list(ts) for p, ts in sorted(self.subscriptions().items())},
            "connections": [
                {
                    "peer_id": c.peer_id,
                    "direction": c.direction,
                    "remote_addr": c.remote_addr,
                    "age_s": None if c.opened_at is None else round(max(0.0, at - c.opened_at), 1),
                    "rtt_ms": None if c.rtt_ms is None else round(c.rtt_ms, 3),
                    "rtt_age_s": None if c.rtt_at is None else round(max(0.0, at - c.rtt_at), 1),
                }
                for c in self.connections
            ],
            "validation": {
                "enabled": self.validating,
                "rejected": {t: dict(r) for t, r in sorted(self.rejected.items())},
                "rejected_total": sum(sum(r.values()) for r in self.rejected.values()),
            },
            "scoring": {
                "enabled": self.graylist_threshold is not None,
                "graylistings": self.graylistings,
                "graylist_ignored_rpcs": self.graylist_ignored_rpcs,
                "score_gated": self.score_gated,
                "graylist_threshold": self.graylist_threshold,
                "graylisted": [p.peer_id for p in self.scores if p.graylisted],
                "peers": [p.to_dict() for p in self.scores],
                "peers_omitted": self.scores_omitted,
            },
        }
