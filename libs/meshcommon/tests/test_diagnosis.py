"""The shared finding model: severity order, thresholds, sorting, capped evidence."""

from __future__ import annotations

from meshcommon.diagnosis import (
    MAX_EVIDENCE_ITEMS,
    Diagnosis,
    Finding,
    at_least,
    build_diagnosis,
    capped,
)


def _finding(fid: str, severity: str) -> Finding:
    return Finding.model_validate(
        {"id": fid, "severity": severity, "title": fid, "evidence": {}, "fix": "fix it"}
    )


def test_severity_thresholds() -> None:
    assert at_least("critical", "warning") and at_least("warning", "warning")
    assert not at_least("info", "warning")
    assert at_least("info", "info") and not at_least("warning", "critical")


def test_diagnosis_sorts_counts_and_tags_findings() -> None:
    diag = build_diagnosis(
        "monitor",
        "1.0",
        checks=["b", "a", "a"],
        findings=[
            _finding("z_info", "info"),
            _finding("y_crit", "critical"),
            _finding("x", "warning"),
        ],
    )
    assert [f.id for f in diag.findings] == ["y_crit", "x", "z_info"]
    assert diag.summary == {"critical": 1, "warning": 1, "info": 1}
    assert diag.checks == ["a", "b"]
    assert {f.source for f in diag.findings} == {"monitor"}
    # The wire form parses back (the doctor reads it from another process).
    again = Diagnosis.model_validate_json(diag.model_dump_json())
    assert again == diag


def test_evidence_lists_are_capped_with_a_count() -> None:
    items = list(range(MAX_EVIDENCE_ITEMS + 7))
    shown, omitted = capped(items)
    assert len(shown) == MAX_EVIDENCE_ITEMS and omitted == 7
    assert capped([1, 2]) == ([1, 2], 0)
