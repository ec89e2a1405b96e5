"""The monitor's diagnosis: what it can see from inside the mesh, as findings with their
evidence and fix. Pure: ``MonitorFacts`` holds everything (the clock included).

What the monitor sees first-hand: the subscriptions its peers announce (GossipSub tells
every connected peer), who publishes where, the sender's timestamp against the receive
time, every dial and its root cause. What WHOOSH sees (the Swarm, agents' HTTP health) is
its own diagnosis; the doctor command shows both.

Every check is registered in ``CHECKS`` (end of module) with the facts it cannot do
without; ``meshcommon.diagnosis.Checks`` reports which ran and which were skipped, and
why. Adding a check is one function and one line: ``_graylisted`` below reads the
monitor's own libp2p view (``facts.mesh``, ``Unavailable`` while the node does not
answer), so it is registered with ``needs=("mesh",)`` and skipped, with the reason, when
that view is missing::

    CHECKS.add(PEER_GRAYLISTED, _graylisted, needs=("mesh",))
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from hmmm_monitor.domain.delivery import DeliveryView
from hmmm_monitor.domain.expected_peers import PeerState
from hmmm_monitor.domain.neighbourhood import (
    QUALITY_LOSSY,
    QUALITY_SLOW,
    LinkThresholds,
    Neighbourhood,
    SeenPeer,
)
from meshcommon.diagnosis import (
    OPEN_MESH,
    PEER_GRAYLISTED,
    PNET_REFUSED,
    TOPIC_NEAR_MISS,
    Checks,
    Finding,
    Severity,
    Unavailable,
    available,
    capped,
    finding,
    graylisted_finding,
    open_mesh_finding,
    pnet_refused_finding,
    topic_near_miss_finding,
)
from meshcommon.models import PnetRefusalRecord
from meshcommon.neighbours import PING_WINDOW, implementation_of
from meshcommon.p2p.types import MeshView
from meshcommon.peer.bootstrap_client import BootstrapResult
from meshcommon.topic_near_miss import near_miss
from meshcommon.topics import ALL_TOPICS, COORDINATION

# Check ids (each is also the id of the findings it produces; TOPIC_NEAR_MISS, imported
# above, is shared with WHOOSH and built by meshcommon).
TOPIC_WITHOUT_PUBLISHER = "topic_without_publisher"
NO_EXPECTED_AGENTS = "no_expected_agents"
AGENTS_NOT_HEARD = "agents_not_heard"
MESH_PARTITIONED = "mesh_partitioned"
CLOCK_SKEW = "clock_skew"
P2P_PORT_UNREACHABLE = "p2p_port_unreachable"
PEER_ID_MISMATCH = "peer_id_mismatch"
FOREIGN_PEERS = "foreign_peers"
BOOTSTRAP_UNAVAILABLE = "bootstrap_unavailable"
LINK_DEGRADED = "link_degraded"

# Dial failures that mean "the host answers, the libp2p port does not".
PORT_FAILURES = ("connection_refused", "timeout", "unreachable")
# A dial failure counts while it is this recent (a fixed fault fades out of the report).
RECENT_FAILURE_S = 600.0
# An unreachable port is a finding after this many failed dials in a row, over at least
# this long: longer than WHOOSH's health period (15 s by default), so that an agent that
# crashed has left WHOOSH's list by then and is not mistaken for a blocked port.
MIN_PORT_FAILURES = 2
MIN_PORT_FAILING_S = 30.0
# Timestamps needed before a sender's clock is judged.
MIN_SKEW_SAMPLES = 3


@dataclass(frozen=True)
class BootstrapFacts:
    """Where the monitor's bootstrap list came from, and how old it is."""

    source: str  # whoosh, static, cache or none
    error: str | None  # why WHOOSH was not used, when it was configured
    count: int
    age_s: float | None = None

    @classmethod
    def of(cls, result: BootstrapResult, now: float) -> BootstrapFacts:
        age = result.age_s(datetime.fromtimestamp(now, UTC))
        rounded = round(age, 1) if age is not None else None
        return cls(result.source, result.error, len(result.peers), rounded)


@dataclass(frozen=True)
class MonitorFacts:
    now: float  # unix time
    uptime_s: float
    monitor_peer_id: str
    heard_window_s: float
    clock_skew_threshold_s: float
    expected: Mapping[str, PeerState]
    heard: frozenset[str]  # peers with a valid message within the window
    names: Mapping[str, str]  # peer ID -> name (expected and self-declared)
    mesh: MeshView | Unavailable  # the monitor's own libp2p view
    components: tuple[tuple[str, ...], ...]  # live agents split in groups (topology.py)
    foreign: tuple[str, ...]  # live peers that are not agents (topology.py)
    topic_publishers: Mapping[str, set[str]]  # within the window
    delivery: Mapping[str, DeliveryView]
    bootstrap: BootstrapFacts
    whoosh_configured: bool = True
    known_topics: Sequence[str] = field(default=ALL_TOPICS)
    private_network: bool = True  # the monitor's own host runs with a swarm.key
    pnet_recent: Sequence[PnetRefusalRecord] = ()  # its private network's latest refusals
    # The mesh seen from every agent: their neighbours reports (fresh ones), the monitor's
    # own identify answers (peer ID -> (agent version, protocols)), and when a link between
    # two agents is slow or lossy.
    neighbourhood: Neighbourhood = field(default_factory=Neighbourhood)
    identities: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    link_limits: LinkThresholds = field(default_factory=LinkThresholds)

    @property
    def warming_up(self) -> bool:
        """Too early to call anyone silent: agents broadcast once per period."""
        return self.uptime_s < self.heard_window_s

    def name(self, peer_id: str) -> str:
        """An agent's name; a peer of another implementation by its agent version
        (identify) and the tail of its peer ID; else that tail."""
        named = self.names.get(peer_id)
        if named:
            return named
        version = self.agent_version(peer_id)
        return f"{version} ({peer_id[-8:]})" if version else peer_id[-8:]

    def agent_version(self, peer_id: str) -> str:
        """What identify says the peer is: the monitor's own answer, else the agents'."""
        mine = self.identities.get(peer_id)
        if mine and mine[0]:
            return mine[0]
        seen = self.seen.get(peer_id)
        return seen.agent_version if seen else ""

    @cached_property
    def seen(self) -> dict[str, SeenPeer]:
        """Every peer the agents report as a neighbour, with who reports it."""
        return self.neighbourhood.peers()

    @property
    def agents(self) -> set[str]:
        """Expected peers and every peer that reports its neighbours as an agent does."""
        return set(self.expected) | set(self.neighbourhood.reports)

    def who(self, peer_ids: Sequence[str]) -> list[dict[str, str]]:
        return [{"peer_id": p, "name": self.name(p)} for p in peer_ids]


def diagnose(facts: MonitorFacts) -> list[Finding]:
    """The findings of every check that can run on ``facts``."""
    return list(CHECKS.run(facts).findings)


# -- topics ---------------------------------------------------------------------------
def _topic_near_misses(facts: MonitorFacts) -> list[Finding]:
    """Subscribers of a near-miss topic anywhere in the mesh: those that announced it to
    the monitor, and those the agents' neighbours reports name (one hop away), each with
    the agents it is connected to."""
    mesh = available(facts.mesh)
    # topic -> subscriber -> the peers it announced the subscription to
    subs: dict[str, dict[str, set[str]]] = {}
    sources: dict[str, set[str]] = {}
    if mesh is not None:
        for topic in mesh.topics:
            for peer in topic.subscribers:
                subs.setdefault(topic.topic, {}).setdefault(peer, set()).add(facts.monitor_peer_id)
                sources.setdefault(topic.topic, set()).add(SEEN_BY_MONITOR)
    for seen in facts.seen.values():
        for topic in seen.topics:
            subs.setdefault(topic, {}).setdefault(seen.peer_id, set()).update(seen.seen_by)
            sources.setdefault(topic, set()).add(SEEN_BY_AGENTS)
    out = []
    for topic, by_peer in sorted(subs.items()):
        miss = near_miss(topic, facts.known_topics)
        if miss is None:
            continue
        peers = sorted(by_peer)
        shown, omitted = capped(peers)
        rows = [
            {
                "peer_id": p,
                "name": facts.name(p),
                "agent_version": facts.agent_version(p) or None,
                "connected_to": [_named(facts, c) for c in sorted(by_peer[p])],
            }
            for p in shown
        ]
        neighbours = sorted({c for p in shown for c in by_peer[p]} - {facts.monitor_peer_id})
        where = "the configuration of " + ", ".join(facts.name(p) for p in shown[:5])
        if neighbours:
            where += " (connected to " + ", ".join(facts.name(c) for c in neighbours[:5]) + ")"
        found = topic_near_miss_finding(
            miss,
            count=len(peers),
            users="peer(s) subscribed to",
            who_key="peers",
            who=facts.who(shown),
            omitted=omitted,
            seen_in=" and ".join(sorted(sources[topic])),
            fix_where=where,
        )
        found.evidence["subscribers"] = rows
        out.append(found)
    return out


SEEN_BY_MONITOR = "GossipSub subscription announcements to the monitor"
SEEN_BY_AGENTS = "the agents' neighbours reports (announcements to them)"


def _named(facts: MonitorFacts, peer_id: str) -> dict[str, str]:
    if peer_id == facts.monitor_peer_id:
        return _self(facts)
    return {"peer_id": peer_id, "name": facts.name(peer_id)}


def _topics_without_publisher(facts: MonitorFacts) -> list[Finding]:
    out = []
    mesh = available(facts.mesh)
    announced = {t.topic: t.subscribers for t in mesh.topics} if mesh else {}
    for topic in facts.known_topics:
        if facts.topic_publishers.get(topic):
            continue
        subscribers = announced.get(topic, ())
        evidence: dict[str, object] = {
            "topic": topic,
            "window_s": facts.heard_window_s,
            "subscribers_announced": len(subscribers),
            "monitor_uptime_s": round(facts.uptime_s, 1),
        }
        if topic != COORDINATION:
            out.append(
                finding(
                    TOPIC_WITHOUT_PUBLISHER,
                    "info",
                    f"No message on {topic} within the last {facts.heard_window_s:g} s",
                    evidence,
                    "Nothing to fix unless something is expected to publish there.",
                )
            )
            continue
        if not facts.expected:
            continue  # no agent expected: no_expected_agents says why
        severity: Severity = "info" if facts.warming_up else "critical"
        out.append(
            finding(
                TOPIC_WITHOUT_PUBLISHER,
                severity,
                f"No agent publishes on {topic}: no availability broadcast within the last "
                f"{facts.heard_window_s:g} s"
                + (" (the monitor started only now)" if facts.warming_up else ""),
                evidence,
                f"Agents broadcast on {topic!r}: check that they use that exact name (see "
                "topic_near_miss) and that the monitor is connected to at least one of them.",
            )
        )
    return out


# -- coverage and partition --------------------------------------------------------------
def _no_expected_agents(facts: MonitorFacts) -> list[Finding]:
    if facts.expected:
        return []
    info = facts.bootstrap
    return [
        finding(
            NO_EXPECTED_AGENTS,
            "critical",
            "The monitor expects no agent: its bootstrap list is empty",
            {
                "bootstrap_source": info.source,
                "bootstrap_error": info.error,
                "bootstrap_count": info.count,
            },
            "Point MONITOR_WHOOSH_URL at WHOOSH (or set MONITOR_BOOTSTRAP_PEERS) and "
            "fix what WHOOSH's diagnosis reports.",
        )
    ]


def _agents_not_heard(facts: MonitorFacts) -> list[Finding]:
    expected = facts.expected
    if not expected:
        return []  # no_expected_agents says why
    missing = [s for pid, s in sorted(expected.items()) if pid not in facts.heard]
    if not missing:
        return []
    heard = len(expected) - len(missing)
    severity: Severity = "critical" if heard == 0 else "warning"
    if facts.warming_up:
        severity = "info"
    rows, omitted = capped(
        [
            {
                "peer_id": s.peer_id,
                "name": s.name,
                "connected": s.connected,
                "in_bootstrap": s.in_bootstrap,
                "dial_error": None if s.connected else s.reason,
            }
            for s in missing
        ]
    )
    evidence: dict[str, object] = {
        "expected": len(expected),
        "heard": heard,
        "window_s": facts.heard_window_s,
        "missing": rows,
        "missing_omitted": omitted,
    }
    comps = facts.components
    if len(comps) > 1:
        evidence["split"] = [facts.who(c) for c in comps]
    not_connected = [s for s in missing if not s.connected]
    if not_connected:
        fix = (
            "Start or reach the agents named above: each one's dial error says why the "
            "monitor cannot connect (see also p2p_port_unreachable and peer_id_mismatch)."
        )
    else:
        fix = (
            "The monitor is connected to these agents but hears nothing from them: check "
            f"that they publish on {COORDINATION!r} and that their process is not stuck."
        )
    return [
        finding(
            AGENTS_NOT_HEARD,
            severity,
            f"The monitor hears {heard} of {len(expected)} expected agents"
            + (f", split into {len(comps)} groups" if len(comps) > 1 else "")
            + (" (the monitor started only now)" if facts.warming_up else ""),
            evidence,
            fix,
        )
    ]


def _partition(facts: MonitorFacts) -> list[Finding]:
    comps = facts.components
    if len(comps) < 2:
        return []
    return [
        finding(
            MESH_PARTITIONED,
            "critical",
            f"The agents are split into {len(comps)} groups that do not reach each other",
            {
                "groups": [facts.who(c) for c in comps],
                "seen_in": "agents' availability broadcasts (the peers each is connected to)",
            },
            "Restore connectivity between the groups (firewall rules, network partition): "
            "agents re-dial each other from WHOOSH's list as soon as they can.",
        )
    ]


# -- clocks -----------------------------------------------------------------------------
def _clock_skew(facts: MonitorFacts) -> list[Finding]:
    limit_ms = facts.clock_skew_threshold_s * 1000
    skewed = []
    for pid, view in sorted(facts.delivery.items()):
        if pid not in facts.heard:
            continue  # gone quiet: its old timestamps say nothing about now
        median = view.latency_ms_median
        if median is None or view.latency_samples < MIN_SKEW_SAMPLES:
            continue
        if abs(median) > limit_ms:
            skewed.append(
                {
                    "peer_id": pid,
                    "name": facts.name(pid),
                    # receive time minus the sender's timestamp: positive = its clock is
                    # behind ours (or messages are that late), negative = ahead.
                    "offset_s": round(median / 1000, 1),
                    "samples": view.latency_samples,
                }
            )
    if not skewed:
        return []
    rows, omitted = capped(skewed)
    worst = max(abs(float(str(r["offset_s"]))) for r in skewed)
    return [
        finding(
            CLOCK_SKEW,
            "warning",
            f"{len(skewed)} agent(s) stamp their messages up to {worst:g} s off the "
            f"monitor's clock (threshold {facts.clock_skew_threshold_s:g} s)",
            {
                "agents": rows,
                "agents_omitted": omitted,
                "threshold_s": facts.clock_skew_threshold_s,
                "measured_as": "median of receive time minus the sender's availability timestamp",
            },
            "Synchronise these hosts' clocks (NTP/chrony): their timestamps, and every "
            "delivery latency computed from them, are off by that much.",
        )
    ]


# -- dials ------------------------------------------------------------------------------
def _recent(state: PeerState, reason: str, now: float) -> dict[str, object] | None:
    last = state.last_failure.get(reason)
    if last is None:
        return None
    at = last.get("at")
    return last if isinstance(at, float | int) and now - at <= RECENT_FAILURE_S else None


def _p2p_ports(facts: MonitorFacts) -> list[Finding]:
    rows = []
    ports: set[int] = set()
    for s in sorted(facts.expected.values(), key=lambda s: (s.priority, s.peer_id)):
        if s.connected or s.consecutive_failures < MIN_PORT_FAILURES or not s.in_bootstrap:
            continue
        since = s.failing_since
        if s.last_error_reason not in PORT_FAILURES or since is None:
            continue
        if facts.now - since < MIN_PORT_FAILING_S:
            continue
        ports |= {p for p in map(_port, s.multiaddrs) if p is not None}
        rows.append(
            {
                "peer_id": s.peer_id,
                "name": s.name,
                "multiaddrs": s.multiaddrs,
                "reason": s.last_error_reason,
                "detail": s.last_error_detail,
                "failed_dials_in_a_row": s.consecutive_failures,
                "failing_for_s": round(facts.now - since, 1),
                "in_bootstrap": s.in_bootstrap,
            }
        )
    if not rows:
        return []
    from_whoosh = facts.bootstrap.source == "whoosh"
    shown, omitted = capped(rows)
    return [
        finding(
            P2P_PORT_UNREACHABLE,
            "critical",
            f"{len(rows)} agent(s) "
            + ("answer WHOOSH's HTTP health check but " if from_whoosh else "are listed but ")
            + f"refuse or time out on their libp2p port ({MIN_PORT_FAILING_S:g} s or longer)",
            {"agents": shown, "agents_omitted": omitted, "ports": sorted(ports)},
            "Open the libp2p TCP port "
            + "/".join(str(p) for p in sorted(ports))
            + " to these agents (firewall, security group) or make AGENT_P2P_PORT match the "
            "port the agent listens on and advertises.",
        )
    ]


def _port(multiaddr: str) -> int | None:
    match = re.search(r"/tcp/(\d+)", multiaddr)
    return int(match.group(1)) if match else None


def _peer_id_mismatches(facts: MonitorFacts) -> list[Finding]:
    rows = []
    for s in sorted(facts.expected.values(), key=lambda s: (s.priority, s.peer_id)):
        last = _recent(s, "peer_id_mismatch", facts.now)
        if last is None:
            continue
        answered = last.get("answered_by")  # DialFailure.answered_by (meshcommon.p2p)
        rows.append(
            {
                "peer_id": s.peer_id,
                "name": s.name,
                "multiaddr": last.get("multiaddr"),
                "answered_by": answered if isinstance(answered, str) else None,
                "mismatches": s.failure_reasons["peer_id_mismatch"],
                "connected_now": s.connected,
            }
        )
    if not rows:
        return []
    shown, omitted = capped(rows)
    severity: Severity = "warning" if all(r["connected_now"] for r in rows) else "critical"
    addrs = sorted({str(r["multiaddr"]) for r in rows})
    return [
        finding(
            PEER_ID_MISMATCH,
            severity,
            f"Dials to {len(rows)} agent(s) reached another peer (peer ID mismatch): "
            "an address in front of several agents",
            {"agents": shown, "agents_omitted": omitted, "addresses": addrs},
            f"{', '.join(addrs[:3])} is a load-balanced address (a Swarm VIP or a name in "
            "front of several agents): give each agent's own address instead "
            "(endpoint_mode: dnsrr, tasks.<service>, or WHOOSH's bootstrap list).",
        )
    ]


# -- who else is here ------------------------------------------------------------------
def _foreign_peers(facts: MonitorFacts) -> list[Finding]:
    foreign = facts.foreign
    if not foreign:
        return []
    shown, omitted = capped(foreign)
    mesh = available(facts.mesh)
    connected = {c.peer_id for c in mesh.connections} if mesh else set()
    subs = mesh.subscriptions() if mesh else {}
    seen = facts.seen
    counts: Counter[str] = Counter()
    versions: dict[str, set[str]] = {}
    for p in foreign:
        version = facts.agent_version(p)
        impl = implementation_of(version)
        counts[impl] += 1
        versions.setdefault(impl, set()).update([version] if version else [])
    grouped = counts.most_common()
    by_impl = {impl: {"count": n, "agent_versions": sorted(versions[impl])} for impl, n in grouped}
    summary = ", ".join(
        f"{n} {impl}" + (f" ({', '.join(sorted(versions[impl])[:3])})" if versions[impl] else "")
        for impl, n in grouped
    )

    def topics_of(p: str) -> list[str]:
        found = set(subs.get(p, ()))
        if p in seen:
            found |= set(seen[p].topics)
        return sorted(found)

    return [
        finding(
            FOREIGN_PEERS,
            "info",
            f"{len(foreign)} peer(s) in the mesh are not expected agents: {summary}",
            {
                "peers": [
                    {
                        "peer_id": p,
                        "name": facts.name(p),
                        "agent_version": facts.agent_version(p) or None,
                        "implementation": implementation_of(facts.agent_version(p)),
                        "connected_to_monitor": p in connected,
                        "connected_to": [
                            _named(facts, a) for a in (seen[p].seen_by if p in seen else ())
                        ],
                        "topics": topics_of(p),
                        "heard": p in facts.heard,
                    }
                    for p in shown
                ],
                "peers_omitted": omitted,
                "by_implementation": by_impl,
                "seen_in": "identify (the monitor's own and the agents' neighbours reports)",
            },
            "Nothing to fix if they are yours (they do not report their links and are left "
            "out of partition detection); otherwise close the mesh (a swarm.key) or firewall "
            "the libp2p port.",
        )
    ]


# -- links between agents ------------------------------------------------------------------
def _links_degraded(facts: MonitorFacts) -> list[Finding]:
    limits = facts.link_limits
    bad = []
    for link in facts.neighbourhood.links(facts.agents):
        quality = link.quality(limits)
        if quality in (QUALITY_SLOW, QUALITY_LOSSY):
            bad.append((link, quality))
    if not bad:
        return []
    ends = Counter(end for link, _ in bad for end in link.ends)
    rows = [
        {
            "ends": facts.who(list(link.ends)),
            "quality": quality,
            "rtt_ms": None if link.rtt_ms is None else round(link.rtt_ms, 1),
            "loss": None if link.loss is None else round(link.loss, 3),
            "pings": link.pings,
            "as_reported_by": {
                facts.name(reporter): {
                    "rtt_ms": None if n.rtt_ms is None else round(n.rtt_ms, 1),
                    "loss": n.loss,
                    "pings": n.pings,
                }
                for reporter, n in sorted(link.by_end.items())
            },
        }
        for link, quality in bad
    ]
    shown, omitted = capped(rows)
    common = [p for p, n in ends.most_common() if n == len(bad) and len(bad) > 1]
    pairs = ", ".join(
        f"{facts.name(link.ends[0])} <-> {facts.name(link.ends[1])}" for link, _ in bad[:4]
    )
    title = f"{len(bad)} link(s) between agents are slow or lossy: {pairs}"
    if common:
        title += f"; {facts.name(common[0])} is at the end of every one"
    return [
        finding(
            LINK_DEGRADED,
            "warning",
            title,
            {
                "links": shown,
                "links_omitted": omitted,
                "common_end": _named(facts, common[0]) if common else None,
                "slow_rtt_ms": limits.slow_rtt_ms,
                "lossy_ratio": limits.lossy_ratio,
                "measured_as": "libp2p pings each agent sends its neighbours: the median RTT "
                f"of the last {PING_WINDOW} that answered and the share that failed (the "
                "worse of the two ends), from the agents' neighbours reports",
            },
            "Check the network between the agents named (packet loss, congestion, a "
            "saturated interface, qdisc/tc rules, MTU) and the load of their hosts: an agent "
            "at the end of every slow link is the likelier cause (CPU starvation, a paused "
            "container). Gossip over these links is late or retried.",
        )
    ]


def _bootstrap(facts: MonitorFacts) -> list[Finding]:
    info = facts.bootstrap
    if not facts.whoosh_configured or info.source == "whoosh":
        return []
    return [
        finding(
            BOOTSTRAP_UNAVAILABLE,
            "warning",
            f"The monitor cannot use WHOOSH's bootstrap list; it uses its {info.source} list",
            {"source": info.source, "error": info.error, "age_s": info.age_s, "count": info.count},
            "Bring WHOOSH back or fix MONITOR_WHOOSH_URL: until then new agents are not "
            "dialled by the monitor.",
        )
    ]


# -- the checks, in the order they run ---------------------------------------------------
# -- the private network --------------------------------------------------------------
def _self(facts: MonitorFacts) -> dict[str, str]:
    return {"name": "hmmm-monitor", "peer_id": facts.monitor_peer_id}


def _open_mesh(facts: MonitorFacts) -> list[Finding]:
    found = open_mesh_finding(
        [] if facts.private_network else [_self(facts)], "MONITOR_PNET_KEY_FILE"
    )
    return [found] if found else []


def _pnet_refused(facts: MonitorFacts) -> list[Finding]:
    found = pnet_refused_finding([(_self(facts), facts.pnet_recent)], facts.now)
    return [found] if found else []


def _graylisted(facts: MonitorFacts) -> list[Finding]:
    mesh = available(facts.mesh)
    if mesh is None:
        return []
    me = [_self(facts)]
    graylisted_by = {s.peer_id: me for s in mesh.scores if s.graylisted}
    rejected: dict[str, int] = {}
    for by_reason in mesh.rejected.values():
        for reason, n in by_reason.items():
            rejected[reason] = rejected.get(reason, 0) + n
    found = graylisted_finding(graylisted_by, rejected)
    return [found] if found else []


CHECKS = Checks(MonitorFacts)
CHECKS.add(TOPIC_NEAR_MISS, _topic_near_misses)
CHECKS.add(TOPIC_WITHOUT_PUBLISHER, _topics_without_publisher)
CHECKS.add(NO_EXPECTED_AGENTS, _no_expected_agents)
CHECKS.add(AGENTS_NOT_HEARD, _agents_not_heard)
CHECKS.add(MESH_PARTITIONED, _partition)
CHECKS.add(CLOCK_SKEW, _clock_skew)
CHECKS.add(P2P_PORT_UNREACHABLE, _p2p_ports)
CHECKS.add(PEER_ID_MISMATCH, _peer_id_mismatches)
CHECKS.add(FOREIGN_PEERS, _foreign_peers)
CHECKS.add(LINK_DEGRADED, _links_degraded)
CHECKS.add(BOOTSTRAP_UNAVAILABLE, _bootstrap)
CHECKS.add(OPEN_MESH, _open_mesh)
CHECKS.add(PNET_REFUSED, _pnet_refused)
CHECKS.add(PEER_GRAYLISTED, _graylisted, needs=("mesh",))
