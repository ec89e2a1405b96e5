"""A real Prometheus against the real services (docker-compose.test.yml, profile monitoring).

Prometheus (chorus-prometheus:test, the image stack.monitoring.yml runs) scrapes WHOOSH and
the monitor by name and the agents through DNS service discovery -> every target is up, and
the two agents added by a scale-up become targets without a change -> the healthy mesh
settles with no alert firing -> every expression of the Grafana dashboard returns data from
Prometheus' query API -> an agent is killed and WHOOSH is stopped at the same moment:
AgentSilent fires for that agent, and only for it, and ChorusTargetDown for WHOOSH, and only
for it, each within its bound -> WHOOSH and the same agent container (same peer ID) are
started again: both alerts resolve and nothing is left firing.

Only documented environment variables make it fast (compose file: scrape and rule evaluation
every 2 s, DNS refresh every 3 s, heard window 20 s). The alerts' bounds are the ones the README
gives: AgentSilent within heard window + scrape interval + evaluation interval + the rule's
`for` (30 s); ChorusTargetDown within scrape interval + evaluation interval + `for` (1 m).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import pytest

from .conftest import REPO, Timings, get_json, json_lines, run, wait_until

pytestmark = pytest.mark.engine

AGENTS, SCALED = 3, 5
# docker-compose.test.yml
HEARD_WINDOW_S, SCRAPE_S, EVAL_S, DNS_REFRESH_S = 20, 2, 2, 3
AGENT_SILENT_FOR_S = 30  # monitoring/prometheus/rules/chorus-alerts.yml
AGENT_SILENT_BOUND_S = HEARD_WINDOW_S + SCRAPE_S + EVAL_S + AGENT_SILENT_FOR_S
TARGET_DOWN_FOR_S = 60  # ChorusTargetDown, same file
TARGET_DOWN_BOUND_S = SCRAPE_S + EVAL_S + TARGET_DOWN_FOR_S
# What a busy 2-core machine adds on top (a late scrape, a slow rule evaluation).
SLACK_S = 60
DASHBOARD = REPO / "monitoring" / "grafana" / "dashboards" / "chorus-mesh.json"
# Grafana's own variables, as Grafana substitutes them for a 2 s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "${datasource}": "prometheus"}


def _hostport(base: list[str], env: dict[str, str], service: str, port: int) -> str:
    hostport = run(*base, "port", service, str(port), env=env).stdout.strip().splitlines()[-1]
    assert hostport.startswith("127.0.0.1:"), hostport
    return f"http://{hostport}"


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    doc = get_json(f"{prom}/api/v1/query?query={quote(expr, safe='')}")
    assert doc["status"] == "success", doc
    return list(doc["data"]["result"])


def _targets(prom: str) -> dict[str, list[dict[str, Any]]]:
    by_job: dict[str, list[dict[str, Any]]] = {}
    for t in get_json(f"{prom}/api/v1/targets?state=active")["data"]["activeTargets"]:
        by_job.setdefault(t["labels"]["job"], []).append(t)
    return by_job


def _all_up(by_job: dict[str, list[dict[str, Any]]], agents: int) -> bool:
    return (
        len(by_job.get("chorus-agent", [])) == agents
        and len(by_job.get("whoosh", [])) == 1
        and len(by_job.get("hmmm-monitor", [])) == 1
        and all(t["health"] == "up" for job in by_job.values() for t in job)
    )


def _firing(prom: str) -> list[dict[str, Any]]:
    alerts = get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["state"] == "firing"]


def _alerts(prom: str, name: str) -> list[dict[str, Any]]:
    """Alert `name`, pending or firing."""
    alerts = get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == name]


def _wait_firing(prom: str, name: str, bound_s: float, since: float) -> list[dict[str, Any]]:
    firing = wait_until(
        f"{name} firing (bound {bound_s} s)",
        lambda: [a for a in _alerts(prom, name) if a["state"] == "firing"],
        bool,
        timeout=bound_s + SLACK_S - (time.monotonic() - since),
        interval=1,
    )
    print(f"{name} fired {time.monotonic() - since:.1f} s after the fault (bound {bound_s} s)")
    return firing


def _dashboard_exprs() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    out = []
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"unsubstituted Grafana variable in {expr!r}"
            out.append((panel["title"], expr))
    return out


def test_prometheus_scrapes_the_mesh_and_agent_silent_fires_and_resolves(
    compose_project: tuple[list[str], str], engine: dict[str, str], timings: Timings
) -> None:
    base, _ = compose_project
    base = [*base, "--profile", "monitoring"]
    env = {**engine, "CHORUS_AGENTS": str(AGENTS)}
    try:
        run(*base, "up", "--detach", "--no-build", env=env, timeout=300)
        prom = _hostport(base, env, "prometheus", 9090)
        timings.mark("compose up (mesh + Prometheus)")

        # 1. Every target up: WHOOSH and the monitor by name, the agents through DNS SD.
        wait_until(
            f"Prometheus: {AGENTS} agents, WHOOSH and the monitor up",
            lambda: _targets(prom),
            lambda by_job: _all_up(by_job, AGENTS),
            timeout=240,
        )
        timings.mark(f"{AGENTS} agent targets + WHOOSH + monitor up")

        # 2. A scale-up is followed through DNS alone.
        run(*base, "up", "--detach", "--no-build", "--no-recreate", "--scale",
            f"chorus={SCALED}", env=env, timeout=300)  # fmt: skip
        wait_until(
            f"Prometheus: {SCALED} agent targets up after the scale-up",
            lambda: _targets(prom),
            lambda by_job: _all_up(by_job, SCALED),
            timeout=240,
        )
        timings.mark(f"scaled to {SCALED}: every agent target up")

        # 3. The mesh converges as Prometheus sees it, and a healthy mesh fires nothing.
        wait_until(
            f"Prometheus: monitor expects and hears {SCALED}, WHOOSH finds {SCALED} healthy",
            lambda: [
                _query(prom, e)
                for e in ("hmmm_peers_expected", "hmmm_peers_heard", "whoosh_agents_healthy")
            ],
            lambda results: all(r and float(r[0]["value"][1]) == SCALED for r in results),
            timeout=180,
        )
        wait_until(
            "no alert firing on the healthy mesh", lambda: _firing(prom), lambda f: not f, 120
        )
        timings.mark("mesh converged, no alert firing")

        # 4. Every dashboard expression evaluates to data against the real metrics.
        exprs = _dashboard_exprs()

        def empty_exprs() -> list[tuple[str, str]]:
            return [(title, expr) for title, expr in exprs if not _query(prom, expr)]

        healthy_empty = wait_until(
            "every dashboard expression but 'missing agents' returns data",
            empty_exprs,
            lambda empty: [title for title, _ in empty] == ["Missing agents (expected, not heard)"],
            timeout=120,
        )
        timings.mark(f"{len(exprs) - len(healthy_empty)} dashboard expressions return data")

        # 5. Kill one agent and stop WHOOSH: AgentSilent fires for that agent and
        # ChorusTargetDown for WHOOSH, each for nothing else. The monitor keeps its last
        # bootstrap list while WHOOSH is away, so it still expects the killed agent.
        containers = json_lines(run(*base, "ps", "--format", "json", env=env).stdout)
        victim = sorted(c["ID"] for c in containers if c["Service"] == "chorus")[0]
        victim_name = run("docker", "inspect", "-f", "{{.Config.Hostname}}", victim).stdout.strip()
        heard = _query(prom, f'hmmm_peer_heard{{name="{victim_name}"}}')
        assert len(heard) == 1, (victim_name, heard)
        victim_peer = heard[0]["metric"]["peer_id"]
        run("docker", "kill", victim)
        faulted_at = time.monotonic()
        run(*base, "stop", "--timeout", "5", "whoosh", env=env)

        silent = _wait_firing(prom, "AgentSilent", AGENT_SILENT_BOUND_S, faulted_at)
        assert [(a["labels"]["name"], a["labels"]["peer_id"]) for a in silent] == [
            (victim_name, victim_peer)
        ]
        assert (
            "runbook" in silent[0]["annotations"]
            and victim_name in silent[0]["annotations"]["summary"]
        )
        timings.mark(f"AgentSilent firing ({time.monotonic() - faulted_at:.0f} s after the kill)")

        # The dashboard's missing-agents panel names it too.
        missing_expr = dict(exprs)["Missing agents (expected, not heard)"]
        assert [r["metric"]["name"] for r in _query(prom, missing_expr)] == [victim_name]

        down = _wait_firing(prom, "ChorusTargetDown", TARGET_DOWN_BOUND_S, faulted_at)
        assert [(a["labels"]["job"], a["labels"]["instance"]) for a in down] == [
            ("whoosh", "whoosh:8080")
        ]
        assert "runbook" in down[0]["annotations"]
        down_after = time.monotonic() - faulted_at
        timings.mark(f"ChorusTargetDown firing for WHOOSH ({down_after:.0f} s after the stop)")

        # 6. WHOOSH and the same agent container again (its identity seed is in its
        # filesystem): both alerts resolve, and nothing is left firing.
        run(*base, "start", "whoosh", env=env)
        run("docker", "start", victim)
        started_at = time.monotonic()
        wait_until(
            f"AgentSilent for {victim_name} and ChorusTargetDown for WHOOSH resolved",
            lambda: _alerts(prom, "AgentSilent") + _alerts(prom, "ChorusTargetDown"),
            lambda alerts: not alerts,
            timeout=180,
            interval=1,
        )
        resolved_after = time.monotonic() - started_at
        print(f"both resolved {resolved_after:.1f} s after WHOOSH and the agent were started again")
        heard_again = _query(prom, f'hmmm_peer_heard{{peer_id="{victim_peer}"}}')
        assert [r["value"][1] for r in heard_again] == ["1"]
        wait_until(
            "no alert firing after the recovery", lambda: _firing(prom), lambda f: not f, 120
        )
        timings.mark(f"both resolved ({resolved_after:.0f} s after the restart)")
    finally:
        # `down` without the profile would leave Prometheus running.
        run(*base, "down", "--volumes", "--timeout", "5", check=False, env=env, timeout=180)
