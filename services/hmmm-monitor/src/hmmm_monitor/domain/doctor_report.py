"""The doctor's report: WHOOSH's and the monitor's diagnoses (or why one could not be had)
as one list of findings, printed for people or as JSON, and the exit status that gates a
deploy. Pure: fetching is ``hmmm_monitor.doctor``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshcommon.diagnosis import (
    SEVERITY_ORDER,
    Diagnosis,
    Finding,
    Severity,
    at_least,
    count_by_severity,
    sort_findings,
)

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

# Findings of the doctor itself: a service it could not ask.
SERVICE_UNREACHABLE = "service_unreachable"
DIAGNOSIS_UNSUPPORTED = "diagnosis_unsupported"
DIAGNOSIS_FAILED = "diagnosis_failed"

_WIDTH = 100


@dataclass(frozen=True)
class ServiceAnswer:
    """One service as the doctor reached it: its diagnosis, or the finding that says why
    there is none."""

    service: str  # whoosh or monitor
    url: str
    diagnosis: Diagnosis | None = None
    problem: Finding | None = None


@dataclass(frozen=True)
class DoctorReport:
    answers: tuple[ServiceAnswer, ...]
    fail_on: Severity
    findings: tuple[Finding, ...] = field(init=False)

    def __post_init__(self) -> None:
        found: list[Finding] = []
        for a in self.answers:
            if a.diagnosis is not None:
                found.extend(a.diagnosis.findings)
            if a.problem is not None:
                found.append(a.problem)
        object.__setattr__(self, "findings", tuple(sort_findings(found)))

    @property
    def exit_code(self) -> int:
        failing = any(at_least(f.severity, self.fail_on) for f in self.findings)
        return EXIT_FINDINGS if failing else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "services": {
                a.service: {
                    "url": a.url,
                    "reached": a.diagnosis is not None,
                    "version": a.diagnosis.version if a.diagnosis else None,
                    "checks": a.diagnosis.checks if a.diagnosis else [],
                    "skipped": [s.model_dump() for s in a.diagnosis.skipped] if a.diagnosis else [],
                }
                for a in self.answers
            },
            "findings": [f.model_dump(mode="json") for f in self.findings],
            "summary": count_by_severity(self.findings),
            "fail_on": self.fail_on,
            "exit_code": self.exit_code,
        }


def problem(
    fid: str, severity: Severity, title: str, evidence: dict[str, Any], fix: str
) -> Finding:
    """A finding of the doctor itself (a service it could not diagnose)."""
    return Finding(
        id=fid, severity=severity, title=title, evidence=evidence, fix=fix, source="doctor"
    )


# -- text -----------------------------------------------------------------------------
def render_text(report: DoctorReport) -> str:
    lines = ["CHORUS mesh doctor"]
    for a in report.answers:
        lines.append(f"  {a.service:<8} {a.url:<28} {_service_line(a)}")
    lines.append("")
    for f in report.findings:
        lines.append(f"{f.severity.upper():<9} {f.id} ({f.source})")
        lines.append(f"  {f.title}")
        for key, value in f.evidence.items():
            lines.extend(_evidence_lines(key, value))
        lines.append(f"  fix: {f.fix}")
        lines.append("")
    counts = count_by_severity(report.findings)
    summary = ", ".join(f"{counts[s]} {s}" for s in SEVERITY_ORDER)
    if not report.findings:
        summary = "no findings"
    verdict = "fail" if report.exit_code else "pass"
    lines.append(f"{summary} -> {verdict} (--fail-on {report.fail_on}, exit {report.exit_code})")
    return "\n".join(lines) + "\n"


def _service_line(a: ServiceAnswer) -> str:
    d = a.diagnosis
    if d is None:
        return "not diagnosed (see below)"
    text = f"{d.service} {d.version}, {len(d.checks)} checks"
    if d.skipped:
        reasons = sorted({s.reason for s in d.skipped})
        text += f", {len(d.skipped)} skipped ({'; '.join(reasons)})"
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={_scalar(v)}" for k, v in value.items() if v not in (None, "", []))
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value) or "-"
    return "-" if value is None else str(value)


def _evidence_lines(key: str, value: Any) -> list[str]:
    if isinstance(value, list) and value and all(isinstance(v, dict | list) for v in value):
        return [f"  {key}:"] + [_clip(f"    - {_scalar(v)}") for v in value]
    if value in (0, None, "", []) and key.endswith("_omitted"):
        return []
    return [_clip(f"  {key}: {_scalar(value)}")]


def _clip(line: str) -> str:
    return line if len(line) <= _WIDTH * 3 else line[: _WIDTH * 3 - 1] + "…"
