"""The doctor command's edge (respx stands in for the two services): every bad answer is a
finding with the cause, never a traceback; the exit status follows --fail-on."""

from __future__ import annotations

import io
import json

import httpx
import pytest
import respx

from hmmm_monitor.doctor import main
from meshcommon.diagnosis import Finding, build_diagnosis

W, M = "http://whoosh.test:8080", "http://monitor.test:8080"


def _diagnosis(service: str, *findings: Finding) -> dict:
    return build_diagnosis(service, "9.9", ["a_check"], findings).model_dump(mode="json")


def _finding(fid: str, severity: str) -> Finding:
    return Finding.model_validate(
        {
            "id": fid,
            "severity": severity,
            "title": f"{fid} happened",
            "evidence": {"peer_id": "12D3KooWX", "agents": [{"name": "agent-03", "slot": 3}]},
            "fix": f"undo {fid}",
        }
    )


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@respx.mock
def test_healthy_services_pass_and_findings_fail_by_threshold() -> None:
    respx.get(f"{W}/api/v1/diagnosis").respond(json=_diagnosis("whoosh"))
    respx.get(f"{M}/api/v1/diagnosis").respond(
        json=_diagnosis("monitor", _finding("topic_without_publisher", "info"))
    )
    code, text = run("--whoosh", W, "--monitor", M)
    assert code == 0
    assert "INFO      topic_without_publisher (monitor)" in text
    assert "0 critical, 0 warning, 1 info -> pass" in text

    respx.get(f"{M}/api/v1/diagnosis").respond(
        json=_diagnosis("monitor", _finding("clock_skew", "warning"))
    )
    code, text = run("--whoosh", W, "--monitor", M)
    assert code == 1
    assert "WARNING   clock_skew (monitor)" in text
    assert "    - name=agent-03 slot=3" in text and "  fix: undo clock_skew" in text
    code, _ = run("--whoosh", W, "--monitor", M, "--fail-on", "critical")
    assert code == 0


@respx.mock
def test_json_report_merges_both_services() -> None:
    respx.get(f"{W}/api/v1/diagnosis").respond(
        json=_diagnosis("whoosh", _finding("peer_id_duplicate", "critical"))
    )
    respx.get(f"{M}/api/v1/diagnosis").respond(
        json=_diagnosis("monitor", _finding("clock_skew", "warning"))
    )
    code, text = run("--whoosh", W, "--monitor", M, "--json")
    doc = json.loads(text)
    assert code == doc["exit_code"] == 1
    assert [(f["id"], f["source"]) for f in doc["findings"]] == [
        ("peer_id_duplicate", "whoosh"),
        ("clock_skew", "monitor"),
    ]
    assert doc["summary"] == {"critical": 1, "warning": 1, "info": 0}
    assert doc["services"]["whoosh"]["reached"] and doc["services"]["whoosh"]["version"] == "9.9"


@respx.mock
def test_each_bad_answer_is_a_finding() -> None:
    respx.get(f"{W}/api/v1/diagnosis").respond(404, json={"detail": "Not Found"})
    respx.get(f"{M}/api/v1/diagnosis").respond(200, text="<html>Bad gateway</html>")
    code, text = run("--whoosh", W, "--monitor", M, "--json")
    doc = json.loads(text)
    by_id = {f["id"]: f for f in doc["findings"]}
    assert code == 1
    old = by_id["diagnosis_unsupported"]
    assert old["severity"] == "warning" and "older version" in old["title"]
    assert old["evidence"]["url"] == f"{W}/api/v1/diagnosis"
    bad = by_id["diagnosis_failed"]
    assert bad["severity"] == "critical" and "<html>Bad gateway" in bad["evidence"]["answer"]
    assert doc["services"]["monitor"]["reached"] is False

    respx.get(f"{M}/api/v1/diagnosis").respond(200, json={"findings": "nope"})
    _, text = run("--monitor", M)
    assert "not a diagnosis (service: Field required)" in text

    respx.get(f"{M}/api/v1/diagnosis").respond(503, text="node down")
    _, text = run("--monitor", M)
    assert "did not answer with a diagnosis (HTTP 503)" in text and "node down" in text


@respx.mock
def test_unreachable_and_silent_services() -> None:
    respx.get(f"{W}/api/v1/diagnosis").mock(side_effect=httpx.ConnectError("refused"))
    respx.get(f"{M}/api/v1/diagnosis").mock(side_effect=httpx.ReadTimeout("slow"))
    code, text = run("--whoosh", W, "--monitor", M, "--timeout", "0.5")
    assert code == 1
    assert "Cannot reach WHOOSH at http://whoosh.test:8080" in text
    assert "error: ConnectError: refused" in text
    assert "Cannot reach the monitor at http://monitor.test:8080" in text


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run()[0] == 2
    assert "give --whoosh URL, --monitor URL, or both" in capsys.readouterr().err
    assert run("--whoosh", "ftp://x")[0] == 2
    assert run("--monitor", M, "--fail-on", "sometimes")[0] == 2
    assert run("--monitor", M, "--timeout", "0")[0] == 2
