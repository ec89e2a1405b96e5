"""Findings: what WHOOSH and the monitor conclude about the mesh, in one shape.

A finding names one fault: a stable ``id`` (scripts match on it), a ``severity``, a
one-line ``title``, the ``evidence`` that shows it (peer IDs, addresses, names, counts) and
the ``fix`` in one sentence. Both services serve ``GET /api/v1/diagnosis`` as a
``Diagnosis``; the doctor command (``python -m hmmm_monitor doctor``) gathers both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

from pydantic import Field

from meshcommon.models import WireModel, utcnow

Severity = Literal["critical", "warning", "info"]

# Most severe first. "critical": the mesh loses agents or messages now; "warning": it
# works, but something is wrong or will break; "info": worth knowing, nothing to fix.
SEVERITY_ORDER: Final[tuple[Severity, ...]] = ("critical", "warning", "info")

# Evidence lists are capped: how many peers, topics or tasks a finding names is up to the
# mesh (a peer can announce thousands of topics), the rest is a count.
MAX_EVIDENCE_ITEMS: Final = 50

T = TypeVar("T")


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
