"""One agent as a health round saw it, and how an answer to ``GET /api/health`` is judged.

Pure: the HTTP exchange and the retries are in ``whoosh.adapters.health_poller``; this
module turns what came back into an ``AgentStatus`` (healthy, or unreachable with a reason).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final, Literal

from multiaddr import Multiaddr
from pydantic import ValidationError

from meshcommon import limits
from meshcommon.models import AgentHealth, utcnow
from meshcommon.multiaddr_policy import AcceptedAddr, MultiaddrPolicy, RejectedAddr
from whoosh.domain.peer_claims import (
    REASON_MISSING,
    REASON_REPLAYED,
    STATUS_PREFIX,
    RecordCheck,
    UnsignedPolicy,
    accepted_unsigned,
    refused_health,
    unsigned_ok,
)
from whoosh.domain.targets import AgentTarget

REASON_TIMEOUT: Final = "timeout"
REASON_CONNECT: Final = "connect_error"
REASON_MALFORMED_JSON: Final = "malformed_json"
REASON_INVALID_HEALTH: Final = "invalid_health"
REASON_NO_ROUTABLE: Final = "no_routable_multiaddrs"
REASON_OVERSIZED_HEALTH: Final = "oversized_health"
REASON_TOO_MANY_MULTIADDRS: Final = limits.REASON_TOO_MANY_MULTIADDRS
# A reported multiaddr that the agent's signed record does not sign (not listed).
REASON_UNSIGNED_ADDR: Final = "not_in_signed_record"

State = Literal["healthy", "unreachable"]


class CheckFailed(Exception):
    """A health check that did not produce a usable AgentHealth; ``reason`` is the metric
    label and the API's ``reason``, ``detail`` the human part."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class RetryableCheckFailed(CheckFailed):
    """Worth asking again after a backoff."""


@dataclass(frozen=True)
class AgentStatus:
    target: AgentTarget
    state: State
    reason: str | None = None  # None when healthy
    detail: str | None = None  # human detail of the last error
    health: AgentHealth | None = None
    accepted: tuple[AcceptedAddr, ...] = ()
    rejected: tuple[RejectedAddr, ...] = ()
    attempts: int = 0
    latency_ms: float | None = None
    last_seen: datetime | None = None  # last time it answered healthy
    checked_at: datetime = field(default_factory=utcnow)
    # What its signed peer record proved (None: the answer never got that far).
    record: RecordCheck | None = None

    @property
    def signed(self) -> bool | None:
        """True: its addresses are signed by its peer ID's key; False: not (refused, or
        listed unsigned); None: no usable answer."""
        return self.record.signed if self.record else None

    @property
    def claim_refused(self) -> bool:
        """A host claiming a peer ID it did not prove (its reason is ``record_*``)."""
        return bool(self.reason and self.reason.startswith(STATUS_PREFIX))

    @property
    def peer_id(self) -> str | None:
        return self.health.peer_id if self.health else None

    @property
    def name(self) -> str:
        """The agent's own name, else what discovery calls it."""
        return (self.health.name if self.health else "") or self.target.name

    @property
    def multiaddrs(self) -> list[str]:
        return [a.multiaddr for a in self.accepted]


def short_error(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text (its type name if it has none), capped."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def read_health(status_code: int, reason_phrase: str, content: bytes) -> AgentHealth:
    """An HTTP answer to ``GET /api/health`` -> the agent's AgentHealth, or CheckFailed.

    5xx raise RetryableCheckFailed (the agent may be starting); other non-200 answers and
    bodies that are not a valid AgentHealth raise CheckFailed (asking again gives the same
    answer).
    """
    if status_code >= 500:
        raise RetryableCheckFailed(f"http_{status_code}", reason_phrase)
    if status_code != 200:
        raise CheckFailed(f"http_{status_code}", reason_phrase)
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise CheckFailed(REASON_MALFORMED_JSON, short_error(exc)) from exc
    try:
        health = AgentHealth.model_validate(data)
    except ValidationError as exc:
        errs = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise CheckFailed(REASON_INVALID_HEALTH, errs[:200]) from exc
    if not health.peer_id.strip():
        raise CheckFailed(REASON_INVALID_HEALTH, "peer_id: empty")
    return health


def published_multiaddrs(target: AgentTarget, reported: Sequence[str], peer_id: str) -> list[str]:
    """Where the agent is reachable on its node: for each TCP port of its own multiaddrs
    that its task publishes in host mode, that node port at the node's address (a gateway
    agent, dialled from outside the overlay)."""
    if not target.node_address or not target.host_ports:
        return []
    ports = set()
    for addr in reported:
        try:
            ports.add(int(Multiaddr(addr).value_for_protocol("tcp")))
        except Exception:  # not a TCP multiaddr (the policy names why later)
            continue
    try:
        ip = ipaddress.ip_address(target.node_address)
    except ValueError:
        return []
    proto = "ip6" if ip.version == 6 else "ip4"
    return [
        f"/{proto}/{ip}/tcp/{node_port}/p2p/{peer_id}"
        for container_port, node_port in target.host_ports
        if container_port in ports
    ]


def status_from_health(
    target: AgentTarget,
    health: AgentHealth,
    policy: MultiaddrPolicy,
    *,
    attempts: int,
    latency_ms: float | None,
    previous: AgentStatus | None,
    now: datetime,
    record: RecordCheck,
    unsigned: UnsignedPolicy = "reject",
    max_multiaddrs: int = limits.MAX_MULTIADDRS_PER_PEER,
) -> AgentStatus:
    """Healthy if at least one address the agent's signed record signs (``record``, see
    ``whoosh.domain.peer_claims``) passes ``policy``; otherwise unreachable
    (``no_routable_multiaddrs``). A claim the record does not prove is unreachable with
    ``record_<reason>`` and nothing of the answer but its peer ID is kept; an answer
    without a record is listed from its ``multiaddrs`` only with ``unsigned="accept"``.
    ``rejected`` holds every multiaddr refused (by the policy, or reported but not signed).
    An agent claiming more than ``max_multiaddrs`` is refused before any is looked at
    (``too_many_multiaddrs``): no address list costs WHOOSH more than the budget."""
    if len(health.multiaddrs) > max_multiaddrs:
        return AgentStatus(
            target,
            "unreachable",
            REASON_TOO_MANY_MULTIADDRS,
            f"{len(health.multiaddrs)} multiaddrs reported, at most {max_multiaddrs} accepted",
            health=health.model_copy(update={"multiaddrs": []}),
            attempts=attempts,
            latency_ms=latency_ms,
            last_seen=previous.last_seen if previous else None,
        )
    unsigned_rejects: list[RejectedAddr] = []
    if record.signed:
        # Only what the key holder signed; the node address of a published port (gateway)
        # comes from WHOOSH's own Swarm API, for a port the record signs.
        reported = [f"{a}/p2p/{health.peer_id}" for a in record.addresses]
        signed = {*record.addresses, *reported}
        unsigned_rejects = [
            RejectedAddr(a, REASON_UNSIGNED_ADDR, "reported, but not in the signed peer record")
            for a in health.multiaddrs
            if a not in signed
        ]
    elif accepted_unsigned(record, unsigned):
        reported, record = list(health.multiaddrs), unsigned_ok()
    else:
        return AgentStatus(
            target,
            "unreachable",
            record.status_reason,
            record.detail,
            health=refused_health(health),
            attempts=attempts,
            latency_ms=latency_ms,
            last_seen=previous.last_seen if previous else None,
            record=record,
        )
    published = published_multiaddrs(target, reported, health.peer_id)
    verdict = policy.filter([*reported, *published], health.peer_id)
    status = AgentStatus(
        target,
        "healthy",
        health=health,
        accepted=verdict.accepted,
        rejected=(*verdict.rejected, *unsigned_rejects),
        attempts=attempts,
        latency_ms=latency_ms,
        last_seen=now,
        record=record,
    )
    if verdict.accepted:
        return status
    # It answered, but nothing it reported can be dialled: useless as a bootstrap peer.
    reasons = ", ".join(sorted({r.reason for r in status.rejected})) or "none reported"
    return replace(
        status,
        state="unreachable",
        reason=REASON_NO_ROUTABLE,
        detail=f"{len(health.multiaddrs)} reported, rejected: {reasons}",
        last_seen=previous.last_seen if previous else None,
    )


def shadow_unproven(statuses: Sequence[AgentStatus]) -> list[AgentStatus]:
    """Once a round has every answer: a host that names a peer ID another host proves
    (a signed record naming that other host's address) is refused, so a key holder is
    never listed next to a host that merely names its peer ID: an answer without a record
    listed because ``WHOOSH_UNSIGNED_HEALTH=accept`` (``record_missing``), and an answer
    carrying a record that names none of its own addresses (``record_replayed``: a copy of
    the key holder's answer)."""
    proven = {
        s.peer_id: s.target.url
        for s in statuses
        if s.state == "healthy" and s.record is not None and s.record.proven
    }
    out = []
    for s in statuses:
        holder = proven.get(s.peer_id) if s.state == "healthy" else None
        record = s.record
        if holder is not None and record is not None and not record.proven:
            if record.elsewhere:
                refusal = RecordCheck(
                    False,
                    REASON_REPLAYED,
                    f"{record.detail}; {holder} proves this peer ID with a record naming "
                    "its own address",
                    seq=record.seq,
                )
            else:
                refusal = RecordCheck(
                    False,
                    REASON_MISSING,
                    f"no peer_record, and {holder} proves this peer ID with one",
                )
            s = replace(
                s,
                state="unreachable",
                reason=refusal.status_reason,
                detail=refusal.detail,
                health=refused_health(s.health) if s.health else None,
                accepted=(),
                rejected=(),
                record=refusal,
            )
        out.append(s)
    return out


def status_from_failure(
    target: AgentTarget,
    failure: CheckFailed,
    *,
    attempts: int,
    latency_ms: float | None,
    previous: AgentStatus | None,
) -> AgentStatus:
    """Unreachable with the failure's reason; ``last_seen`` carries over from ``previous``."""
    return AgentStatus(
        target,
        "unreachable",
        failure.reason,
        failure.detail,
        attempts=attempts,
        latency_ms=latency_ms,
        last_seen=previous.last_seen if previous else None,
    )
