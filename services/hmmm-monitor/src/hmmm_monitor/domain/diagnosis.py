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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hmmm_monitor.domain.delivery import DeliveryView
from hmmm_monitor.domain.expected_peers import PeerState
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

    @property
    def warming_up(self) -> bool:
        """Too early to call anyone silent: agents broadcast once per period."""
        return self.uptime_s < self.heard_window_s

    def name(self, peer_id: str) -> str:
        return self.names.get(peer_id) or peer_id[-8:]

    def who(self, peer_ids: Sequence[str]) -> list[dict[str, str]]:
        return [{"peer_id": p, "name": self.name(p)} for p in peer_ids]


def diagnose(facts: MonitorFacts) -> list[Finding]:
    """The findings of every check that can run on ``facts``."""
    return list(CHECKS.run(facts).findings)


# -- topics ---------------------------------------------------------------------------
def _topic_near_misses(facts: MonitorFacts) -> list[Finding]:
    mesh = available(facts.mesh)
    if mesh is None:
        return []
    out = []
    for topic in mesh.topics:
        miss = near_miss(topic.topic, facts.known_topics)
        if miss is None or not topic.subscribers:
            continue
        shown, omitted = capped(topic.subscribers)
        out.append(
            topic_near_miss_finding(
                miss,
                count=len(topic.subscribers),
                users="peer(s) subscribed to",
                who_key="peers",
                who=facts.who(shown),
                omitted=omitted,
                seen_in="GossipSub subscription announcements to the monitor",
                fix_where="the configuration of " + ", ".join(facts.name(p) for p in shown[:5]),
            )
        )
    return out


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
    return [
        finding(
            FOREIGN_PEERS,
            "info",
            f"{len(foreign)} peer(s) in the mesh are not expected agents and do not report "
            "their links (another libp2p implementation, a tool, a misconfigured peer)",
            {
                "peers": [
                    {
                        "peer_id": p,
                        "name": facts.name(p),
                        "connected_to_monitor": p in connected,
                        "topics": list(subs.get(p, ())),
                        "heard": p in facts.heard,
                    }
                    for p in shown
                ],
                "peers_omitted": omitted,
            },
            "Nothing to fix if they are yours; they are left out of partition detection.",
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
CHECKS.add(TOPIC_NEAR_MISS, _topic_near_misses, needs=("mesh",))
CHECKS.add(TOPIC_WITHOUT_PUBLISHER, _topics_without_publisher)
CHECKS.add(NO_EXPECTED_AGENTS, _no_expected_agents)
CHECKS.add(AGENTS_NOT_HEARD, _agents_not_heard)
CHECKS.add(MESH_PARTITIONED, _partition)
CHECKS.add(CLOCK_SKEW, _clock_skew)
CHECKS.add(P2P_PORT_UNREACHABLE, _p2p_ports)
CHECKS.add(PEER_ID_MISMATCH, _peer_id_mismatches)
CHECKS.add(FOREIGN_PEERS, _foreign_peers)
CHECKS.add(BOOTSTRAP_UNAVAILABLE, _bootstrap)
CHECKS.add(OPEN_MESH, _open_mesh)
CHECKS.add(PNET_REFUSED, _pnet_refused)
CHECKS.add(PEER_GRAYLISTED, _graylisted, needs=("mesh",))
