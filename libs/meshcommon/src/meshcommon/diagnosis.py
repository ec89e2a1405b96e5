"""Findings: what WHOOSH and the monitor conclude about the mesh, in one shape.

A finding names one fault: a stable ``id`` (scripts match on it), a ``severity``, a
one-line ``title``, the ``evidence`` that shows it (peer IDs, addresses, names, counts) and
the ``fix`` in one sentence. Both services serve ``GET /api/v1/diagnosis`` as a
``Diagnosis``; the doctor command (``python -m hmmm_monitor doctor``) gathers both.

A service diagnoses with a ``Checks`` registry over its facts, a frozen dataclass that
holds everything the checks read (no check does I/O). A check is an id (also the id of the
findings it produces), a function ``facts -> findings`` and the facts it ``needs``: a
field of the facts that the service could not read holds ``Unavailable(reason)``, and every
check that needs it is listed as skipped with that reason, so "no finding" is never
mistaken for "fine". ``Checks.diagnosis()`` runs them and builds the ``Diagnosis``::

    CHECKS = Checks(WhooshFacts)
    CHECKS.add(AGENT_SERVICE_VIP, _service_vip, needs=("swarm",))
    CHECKS.add(PEER_ID_DUPLICATE, _duplicate_peer_ids)
    ...
    CHECKS.diagnosis("whoosh", version, facts)  # checks, skipped, findings, summary

Findings both services make are built here once (``topic_near_miss_finding``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, Literal, TypeVar

from pydantic import Field

from meshcommon.models import PnetRefusalRecord, WireModel, utcnow
from meshcommon.topic_near_miss import NearMiss

Severity = Literal["critical", "warning", "info"]

# Most severe first. "critical": the mesh loses agents or messages now; "warning": it
# works, but something is wrong or will break; "info": worth knowing, nothing to fix.
SEVERITY_ORDER: Final[tuple[Severity, ...]] = ("critical", "warning", "info")

# Evidence lists are capped: how many peers, topics or tasks a finding names is up to the
# mesh (a peer can announce thousands of topics), the rest is a count.
MAX_EVIDENCE_ITEMS: Final = 50

T = TypeVar("T")
F = TypeVar("F")

# A finding both services make (from what each sees of the topics peers use).
TOPIC_NEAR_MISS: Final = "topic_near_miss"


def severity_rank(severity: Severity) -> int:
    """0 for critical, 1 for warning, 2 for info: lower is more severe."""
    return SEVERITY_ORDER.index(severity)


def at_least(severity: Severity, threshold: Severity) -> bool:
    """Whether ``severity`` is ``threshold`` or more severe."""
    return severity_rank(severity) <= severity_rank(threshold)


def capped(items: Sequence[T], limit: int = MAX_EVIDENCE_ITEMS) -> tuple[list[T], int]:
    """The first ``limit`` items and how many were left out."""
    return list(items[:limit]), max(0, len(items) - limit)


class Finding(WireModel):
    """One fault, with what shows it and how to fix it."""

    id: str = Field(description="Stable identifier of the kind of fault, e.g. peer_id_duplicate")
    severity: Severity
    title: str = Field(description="One line: what is wrong")
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="Peer IDs, addresses, names, counts that show it"
    )
    fix: str = Field(description="What to do, in one sentence")
    source: str = Field(default="", description="Who found it: whoosh, monitor or doctor")


def finding(
    fid: str, severity: Severity, title: str, evidence: dict[str, Any], fix: str
) -> Finding:
    """A ``Finding`` from positional parts (the checks build many)."""
    return Finding(id=fid, severity=severity, title=title, evidence=evidence, fix=fix)


class SkippedCheck(WireModel):
    """A check that could not run, and why (so "no finding" is never mistaken for "fine")."""

    check: str
    reason: str


class Diagnosis(WireModel):
    """``GET /api/v1/diagnosis`` of one service."""

    service: str
    version: str = ""
    generated_at: datetime = Field(default_factory=utcnow)
    checks: list[str] = Field(default_factory=list, description="Ids of the checks that ran")
    skipped: list[SkippedCheck] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    summary: dict[str, int] = Field(
        default_factory=dict, description="Number of findings per severity"
    )


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then by id (a stable order for people and for diffs)."""
    return sorted(findings, key=lambda f: (severity_rank(f.severity), f.id, f.title))


def count_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(SEVERITY_ORDER, 0)
    for f in findings:
        counts[f.severity] += 1
    return counts


def build_diagnosis(
    service: str,
    version: str,
    checks: Iterable[str],
    findings: Iterable[Finding],
    skipped: Iterable[SkippedCheck] = (),
    now: datetime | None = None,
) -> Diagnosis:
    """A ``Diagnosis`` with its findings sorted, tagged with ``service`` and counted."""
    tagged = [f if f.source else f.model_copy(update={"source": service}) for f in findings]
    ordered = sort_findings(tagged)
    return Diagnosis(
        service=service,
        version=version,
        generated_at=now or utcnow(),
        checks=sorted(set(checks)),
        skipped=list(skipped),
        findings=ordered,
        summary=count_by_severity(ordered),
    )


# -- checks and the runner ----------------------------------------------------------------
@dataclass(frozen=True)
class Unavailable:
    """A fact the service could not read, and why (``"Swarm API: ConnectionError: ..."``).
    The checks that need it are skipped with this reason; the others still run."""

    reason: str


def available(value: T | Unavailable) -> T | None:
    """The fact, or None when it could not be read (for checks that use it if present)."""
    return None if isinstance(value, Unavailable) else value


@dataclass(frozen=True)
class Check(Generic[F]):
    """One check: its id (also the id of the findings it produces), the function that
    finds them in the facts, and the fields of the facts it cannot do without."""

    id: str
    find: Callable[[F], Iterable[Finding]]
    needs: tuple[str, ...] = ()
    # Runs after the others and reports only when they found nothing: a catch-all
    # ("discovery finds no agent") that a more precise cause makes redundant.
    last_resort: bool = False


@dataclass(frozen=True)
class CheckRun:
    """What one run of the checks found, which ran and which were skipped and why."""

    ran: tuple[str, ...]
    skipped: tuple[SkippedCheck, ...]
    findings: tuple[Finding, ...]


class Checks(Generic[F]):
    """A service's checks over its facts ``F`` (a dataclass), in the order they run.

    Registering a check that needs a field ``F`` does not have, or an id twice, fails at
    import, not at the first diagnosis.
    """

    def __init__(self, facts_type: type[F]) -> None:
        fields = getattr(facts_type, "__dataclass_fields__", None)
        if not isinstance(fields, dict):
            raise TypeError(f"{facts_type.__name__} is not a dataclass")
        self.facts_type = facts_type
        self._fields: frozenset[str] = frozenset(fields)
        self._checks: list[Check[F]] = []

    def add(
        self,
        check_id: str,
        find: Callable[[F], Iterable[Finding]],
        *,
        needs: Sequence[str] = (),
        last_resort: bool = False,
    ) -> None:
        """Register a check; ``needs`` names fields of the facts that may be
        ``Unavailable`` (the check is skipped then, with the field's reason)."""
        if check_id in self.ids:
            raise ValueError(f"check {check_id!r} is registered twice")
        unknown = sorted(set(needs) - self._fields)
        if unknown:
            raise ValueError(
                f"check {check_id!r} needs {unknown}, not fields of {self.facts_type.__name__}"
            )
        self._checks.append(Check(check_id, find, tuple(needs), last_resort))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self._checks)

    def __iter__(self) -> Iterator[Check[F]]:
        return iter(self._checks)

    def skip_reason(self, check: Check[F], facts: F) -> str | None:
        """Why ``check`` cannot run on ``facts`` (the first fact it needs that is
        unavailable), or None when it can."""
        for name in check.needs:
            value = getattr(facts, name)
            if isinstance(value, Unavailable):
                return value.reason
        return None

    def run(self, facts: F) -> CheckRun:
        """Every check whose facts are available, in registration order (last-resort
        checks last, and only if nothing else was found)."""
        ran: list[str] = []
        skipped: list[SkippedCheck] = []
        findings: list[Finding] = []
        runnable: list[Check[F]] = []
        for check in self._checks:
            reason = self.skip_reason(check, facts)
            if reason is None:
                ran.append(check.id)
                runnable.append(check)
            else:
                skipped.append(SkippedCheck(check=check.id, reason=reason))
        for check in runnable:
            if not check.last_resort:
                findings.extend(check.find(facts))
        if not findings:
            for check in runnable:
                if check.last_resort:
                    findings.extend(check.find(facts))
        return CheckRun(tuple(ran), tuple(skipped), tuple(findings))

    def diagnosis(
        self, service: str, version: str, facts: F, now: datetime | None = None
    ) -> Diagnosis:
        """The service's ``Diagnosis``: the checks run over ``facts``."""
        result = self.run(facts)
        return build_diagnosis(
            service, version, result.ran, result.findings, result.skipped, now=now
        )


# -- findings both services make ----------------------------------------------------------
def topic_near_miss_finding(
    miss: NearMiss,
    *,
    count: int,
    users: str,
    who_key: str,
    who: list[Any],
    omitted: int,
    seen_in: str,
    fix_where: str,
) -> Finding:
    """``count`` peers use ``miss.topic``, almost the mesh topic ``miss.known``: they hear
    nothing the mesh publishes. ``users`` says how they use it ("agent(s) use the topic",
    "peer(s) subscribed to"); ``who_key`` names them in the evidence (``who``, capped, and
    ``<who_key>_omitted``); ``fix_where`` is where to correct the name."""
    return finding(
        TOPIC_NEAR_MISS,
        "warning",
        f"{count} {users} {miss.topic!r}, which differs from {miss.known!r} only by "
        f"{' and '.join(miss.differs_by)}",
        {
            "topic": miss.topic,
            "known_topic": miss.known,
            "differs_by": list(miss.differs_by),
            who_key: who,
            f"{who_key}_omitted": omitted,
            "seen_in": seen_in,
        },
        f"Use the topic {miss.known!r} exactly (topic names are case-sensitive) in "
        f"{fix_where}: they hear nothing the mesh publishes.",
    )


# -- the private network (shared by WHOOSH, which reads the agents' health, and the monitor)
OPEN_MESH: Final = "open_mesh"
PNET_REFUSED: Final = "pnet_refused"
# A refusal counts while it is this recent: a peer that stopped knocking fades out.
RECENT_PNET_REFUSAL_S: Final = 600.0
# The refusals that say "a peer without the key" (inbound) or "our key is not accepted"
# (any outbound one). An inbound connection closed or silent before multistream is a port
# probe as often as a peer: counted in metrics, not a finding.
_PNET_SIGNIFICANT: Final = frozenset(
    {("inbound", "wrong_key"), ("inbound", "no_key")}
    | {("outbound", r) for r in ("wrong_key", "no_key", "closed", "timeout")}
)


def open_mesh_finding(hosts: Sequence[dict[str, Any]], setting: str) -> Finding | None:
    """libp2p hosts that run without a private network: any libp2p peer that reaches
    their p2p port joins the mesh, publishes and is forwarded."""
    if not hosts:
        return None
    shown, omitted = capped(hosts)
    return finding(
        OPEN_MESH,
        "warning",
        f"{len(hosts)} libp2p host(s) run an open mesh: any libp2p peer that reaches "
        "their p2p port can join, publish and be forwarded",
        {"hosts": shown, "hosts_omitted": omitted},
        f"Give every host the mesh's swarm.key ({setting}; stack.yml mounts the Swarm "
        "secret chorus_pnet, created as the README says).",
    )


def pnet_refused_finding(
    hosts: Sequence[tuple[dict[str, Any], Sequence[PnetRefusalRecord]]], now: float
) -> Finding | None:
    """Connections the private network refused at each host within the last
    ``RECENT_PNET_REFUSAL_S``: who knocked without the key, or whose key is not ours."""
    rows = []
    for who, refusals in hosts:
        recent = [
            r
            for r in refusals
            if now - r.at <= RECENT_PNET_REFUSAL_S and (r.direction, r.reason) in _PNET_SIGNIFICANT
        ]
        if not recent:
            continue
        by_reason: dict[str, int] = {}
        for r in recent:
            key = f"{r.direction}/{r.reason}"
            by_reason[key] = by_reason.get(key, 0) + 1
        remotes = sorted({r.remote.rsplit(":", 1)[0] for r in recent if r.remote})
        rows.append(
            {
                **who,
                "refused": by_reason,
                "remotes": remotes[:MAX_EVIDENCE_ITEMS],
                "last_at": max(r.at for r in recent),
            }
        )
    if not rows:
        return None
    shown, omitted = capped(rows)
    remotes = sorted({ip for row in rows for ip in row["remotes"]})
    return finding(
        PNET_REFUSED,
        "warning",
        f"The private network refused connections at {len(rows)} host(s) in the last "
        f"{RECENT_PNET_REFUSAL_S / 60:g} min: a peer without the mesh's key, or with "
        "another one",
        {"hosts": shown, "hosts_omitted": omitted, "remotes": remotes[:MAX_EVIDENCE_ITEMS]},
        f"Give the host(s) at {', '.join(remotes[:5]) or 'the addresses shown'} the mesh's "
        "current swarm.key (no_key: none at all; wrong_key: another or an old one, e.g. "
        "after a rotation), or block them if they are not yours; an outbound refusal "
        "means this host's own key is not one its peer accepts.",
    )


# -- validation before forwarding: peers graylisted for invalid messages ----------------
PEER_GRAYLISTED: Final = "peer_graylisted"


def graylisted_finding(
    graylisted_by: dict[str, list[dict[str, Any]]], rejected: dict[str, int]
) -> Finding | None:
    """``graylisted_by``: peer ID -> the hosts whose GossipSub graylists it now (its RPCs
    ignored for sending invalid messages); ``rejected``: the rejections by reason those
    hosts counted (what the peer sent)."""
    if not graylisted_by:
        return None
    rows = [
        {"peer_id": peer, "graylisted_by": hosts} for peer, hosts in sorted(graylisted_by.items())
    ]
    shown, omitted = capped(rows)
    return finding(
        PEER_GRAYLISTED,
        "warning",
        f"{len(rows)} peer(s) graylisted for sending invalid gossip: their messages are "
        "rejected at the first hop and their RPCs ignored",
        {"peers": shown, "peers_omitted": omitted, "rejected_by_reason": rejected},
        "Find the node behind each peer ID (an old build, a foreign implementation, a "
        "broken publisher) and fix what it publishes, or remove it; nothing it sends is "
        "forwarded meanwhile, and it recovers by itself once it stops.",
    )
