"""The shared finding model: severity order, thresholds, sorting, capped evidence."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from meshcommon.diagnosis import (
    MAX_EVIDENCE_ITEMS,
    TOPIC_NEAR_MISS,
    Checks,
    Diagnosis,
    Finding,
    SkippedCheck,
    Unavailable,
    at_least,
    available,
    build_diagnosis,
    capped,
    finding,
    topic_near_miss_finding,
)
from meshcommon.topic_near_miss import near_miss


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


# -- the check registry and its runner ----------------------------------------------------
@dataclass(frozen=True)
class _Facts:
    peers: tuple[str, ...]
    swarm: str | Unavailable


def _one_per_peer(facts: _Facts) -> list[Finding]:
    return [finding("peer_seen", "warning", p, {"peer": p}, "fix it") for p in facts.peers]


def _swarm(facts: _Facts) -> list[Finding]:
    swarm = available(facts.swarm)
    return [finding("swarm_seen", "critical", swarm, {}, "fix it")] if swarm else []


def _catch_all(facts: _Facts) -> list[Finding]:
    return [finding("nothing_else", "info", "nothing else", {}, "fix it")]


def _registry() -> Checks[_Facts]:
    checks = Checks(_Facts)
    checks.add("swarm_seen", _swarm, needs=("swarm",))
    checks.add("nothing_else", _catch_all, last_resort=True)
    checks.add("peer_seen", _one_per_peer)
    return checks


def test_the_runner_runs_every_check_whose_facts_are_there() -> None:
    run = _registry().run(_Facts(("a", "b"), "mgr"))
    assert run.ran == ("swarm_seen", "nothing_else", "peer_seen")
    assert run.skipped == ()
    assert [f.id for f in run.findings] == ["swarm_seen", "peer_seen", "peer_seen"]


def test_a_check_whose_facts_are_unavailable_is_skipped_with_their_reason() -> None:
    run = _registry().run(_Facts(("a",), Unavailable("no Docker socket")))
    assert run.ran == ("nothing_else", "peer_seen")
    assert run.skipped == (SkippedCheck(check="swarm_seen", reason="no Docker socket"),)
    assert [f.id for f in run.findings] == ["peer_seen"]


def test_a_last_resort_check_reports_only_when_nothing_else_is_found() -> None:
    run = _registry().run(_Facts((), Unavailable("no Docker socket")))
    assert "nothing_else" in run.ran
    assert [f.id for f in run.findings] == ["nothing_else"]


def test_the_diagnosis_lists_checks_skipped_and_sorted_findings() -> None:
    diag = _registry().diagnosis("whoosh", "1.0", _Facts(("b", "a"), Unavailable("down")))
    assert diag.checks == ["nothing_else", "peer_seen"]
    assert [s.check for s in diag.skipped] == ["swarm_seen"]
    assert [f.title for f in diag.findings] == ["a", "b"]
    assert {f.source for f in diag.findings} == {"whoosh"}
    assert diag.summary == {"critical": 0, "warning": 2, "info": 0}


def test_registration_mistakes_fail_at_import() -> None:
    checks = _registry()
    with pytest.raises(ValueError, match="twice"):
        checks.add("peer_seen", _one_per_peer)
    with pytest.raises(ValueError, match="swram"):
        checks.add("other", _swarm, needs=("swram",))
    with pytest.raises(TypeError, match="not a dataclass"):
        Checks(dict)


def test_the_topic_near_miss_finding_is_one_sentence_for_both_services() -> None:
    miss = near_miss("CHORUS/coordination/v1", ["chorus/coordination/v1"])
    assert miss is not None
    f = topic_near_miss_finding(
        miss,
        count=2,
        users="peer(s) subscribed to",
        who_key="peers",
        who=["p1", "p2"],
        omitted=0,
        seen_in="here",
        fix_where="the configuration of p1, p2",
    )
    assert (f.id, f.severity) == (TOPIC_NEAR_MISS, "warning")
    assert f.title == (
        "2 peer(s) subscribed to 'CHORUS/coordination/v1', which differs from "
        "'chorus/coordination/v1' only by case"
    )
    assert f.evidence["peers"] == ["p1", "p2"] and f.evidence["peers_omitted"] == 0
    assert f.fix.startswith("Use the topic 'chorus/coordination/v1' exactly")
    assert "the configuration of p1, p2: they hear nothing" in f.fix
