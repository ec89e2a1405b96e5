"""The monitoring that ships with the mesh (monitoring/): what Prometheus and Grafana read
refers to metrics the services really expose, under names that follow Prometheus'
conventions (`promtool check metrics`). Every dashboard expression is also evaluated against
a real Prometheus in tests/engine/test_monitoring.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from chorus_agent.metrics import AgentMetrics
from hmmm_monitor.metrics import MonitorMetrics
from meshcommon.p2p.types import NodeCounters
from meshcommon.waiting import wait_until
from whoosh.metrics import LabelSyncMetrics, WhooshMetrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "chorus-mesh.json"
RULES = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
LOOPBACK = "127.0.97.1"  # this file's own loopback address
# PromQL functions and operators these files use: the other words of an expression (label
# matchers and grouping lists removed) are metric names.
NOT_METRICS = {
    "sum",
    "max",
    "rate",
    "increase",
    "histogram_quantile",
    "or",
    "unless",
    "and",
    "time",
}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        pytest.fail("no promtool: `make test-unit` installs it (scripts/engine/prometheus.sh)")
    return path


def registries() -> dict[str, CollectorRegistry]:
    """Every metric of the three services, with label values the series need to exist."""
    counters = NodeCounters()
    monitor = MonitorMetrics()
    monitor.export_node_counters(counters)
    monitor.export_message_gaps(lambda: 0)
    monitor.set_peer_heard({"12D3KooWAgent01": "agent-01"}, set())
    monitor.observe_rtt("12D3KooWAgent01", 0.004)
    monitor.count_received("CHORUS/coordination/v1", "availability")
    agent = AgentMetrics()
    agent.export_node_counters(counters)
    whoosh = WhooshMetrics()
    labels = LabelSyncMetrics(whoosh.registry)
    labels.missing.labels(repo="chorus/WHOOSH").set(0)
    whoosh.health_checks.labels(result="healthy").inc()
    return {"monitor": monitor.registry, "agent": agent.registry, "whoosh": whoosh.registry}


def exposed_names() -> set[str]:
    names = set()
    for registry in registries().values():
        for family in registry.collect():
            names.update(sample.name for sample in family.samples)
    return names


def recorded_names() -> set[str]:
    return {
        m for rules in RULES for m in re.findall(r"^\s*- record: (\S+)", rules.read_text(), re.M)
    }


def metric_names(expr: str) -> set[str]:
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", GROUPING.sub("", expr))
    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare)) - NOT_METRICS


def dashboard_exprs() -> list[tuple[str, str]]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in doc["panels"]
        for target in panel.get("targets", [])
    ]


@pytest.mark.parametrize("service", ["monitor", "agent", "whoosh"])
def test_exposition_follows_prometheus_conventions(service: str) -> None:
    exposition = generate_latest(registries()[service])
    proc = subprocess.run(
        [promtool(), "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()


def test_every_dashboard_expression_names_real_metrics() -> None:
    known = exposed_names() | recorded_names() | {"up"}
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    unknown = {(title, expr): metric_names(expr) - known for title, expr in exprs}
    assert {k: v for k, v in unknown.items() if v} == {}


def test_every_rule_names_real_metrics() -> None:
    known = exposed_names() | recorded_names() | {"up"}
    for rules in RULES:
        exprs = re.findall(r"^\s*expr: (?:>-|\|)?\s*\n?((?:.*\n)*?)(?=^\s*(?:for|labels|- |$))",
                           rules.read_text(), re.M)  # fmt: skip
        assert exprs, rules
        for expr in exprs:
            assert metric_names(expr) - known == set(), (rules.name, expr)


def test_dashboard_uses_the_provisioned_datasource_variable() -> None:
    doc = json.loads(DASHBOARD.read_text())
    (variable,) = doc["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))


def test_every_alert_has_a_runbook() -> None:
    text = "\n".join(r.read_text() for r in RULES)
    alerts = re.findall(r"^\s*- alert: (\w+)", text, re.M)
    assert len(alerts) >= 12
    for block in re.split(r"^\s*- alert: ", text, flags=re.M)[1:]:
        for key in ("summary:", "description:", "runbook:"):
            assert key in block, (block.splitlines()[0], key)
    tests = "\n".join(p.read_text() for p in (MONITORING / "prometheus" / "tests").glob("*.yml"))
    # promtool cases: `alertname: X` then `exp_alerts: []` (silent) or a list (firing).
    cases = re.findall(r"alertname: (\w+)\n\s*exp_alerts:(.*)\n", tests)
    fires = {name for name, rest in cases if rest.strip() != "[]"}
    stays_silent = {name for name, rest in cases if rest.strip() == "[]"}
    assert [a for a in alerts if a not in fires] == []
    assert [a for a in alerts if a not in stays_silent] == []


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """The shipped configuration and rules, loaded by a real Prometheus on loopback (its
    scrape targets point at nothing: this checks what Prometheus accepts, not the mesh)."""
    binary = Path(promtool()).with_name("prometheus")
    assert binary.exists(), f"no prometheus next to {promtool()}"
    shutil.copytree(MONITORING / "prometheus" / "rules", tmp_path / "rules")
    config = (MONITORING / "prometheus" / "prometheus.yml").read_text()
    for target in ("tasks.chorus", "whoosh:8080", "hmmm-monitor:8080", "localhost:9090"):
        assert target in config
    config = re.sub(r"scrape_configs:.*", "scrape_configs: []\n", config, flags=re.S)
    (tmp_path / "prometheus.yml").write_text(config)
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            str(binary),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200,
                   within_s=60, what="Prometheus ready")  # fmt: skip
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_real_prometheus_loads_the_rules_and_parses_every_dashboard_expression(
    prometheus: str,
) -> None:
    def rules() -> list[dict[str, Any]]:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    loaded, _ = wait_until(
        rules, lambda rs: rs and all(r["health"] == "ok" for r in rs), within_s=60,
        what="every rule evaluated without error",
    )  # fmt: skip
    alerts = re.findall(r"^\s*- alert: ", "".join(r.read_text() for r in RULES), re.M)
    assert len(loaded) == len(recorded_names()) + len(alerts)
    for title, expr in dashboard_exprs():
        query = expr.replace("$__rate_interval", "1m")
        answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5)
        assert answer.status_code == 200 and answer.json()["status"] == "success", (
            title,
            answer.text,
        )


def test_every_runbook_link_is_a_section_of_the_runbooks() -> None:
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    # GitHub/Gitea anchors: the heading in lower case.
    anchors = {h.strip().lower() for h in re.findall(r"^## (.+)$", runbooks, re.M)}
    text = "\n".join(r.read_text() for r in RULES)
    alerts = re.findall(r"^\s*- alert: (\w+)", text, re.M)
    links = re.findall(r'^\s*runbook: "docs/runbooks\.md#([a-z0-9]+)"$', text, re.M)
    assert links == [a.lower() for a in alerts]
    assert set(links) <= anchors, set(links) - anchors
    # Each section says what to run.
    for section in re.split(r"^## ", runbooks, flags=re.M)[1:]:
        assert "```bash" in section, section.splitlines()[0]
