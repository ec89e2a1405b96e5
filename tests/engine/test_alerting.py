"""Alerts reach a person: Prometheus -> Alertmanager -> a webhook, with the real services
(docker-compose.test.yml, profile monitoring: Prometheus, Alertmanager, and `alert-sink`, a
webhook receiver on the project's network that records every notification).

1. A silence for agent B is added the way the README says (`amtool silence add` inside the
   Alertmanager container), the webhook is stopped, and agents A and B are stopped on
   purpose (`docker stop`). AgentSilent fires for both; Alertmanager holds B back
   (suppressed by the silence) and fails to deliver A's notification (the sink is down) ->
   the sink is started again: A's notification arrives (Alertmanager retried), exactly one,
   carrying A's name, peer ID, severity and runbook link, and B is in none.
2. A is started again: one resolved notification for A.
3. The silence is expired: B's notification arrives now (the silence was what held it back);
   B is started again.
4. The monitor is stopped: one notification about the monitor (ChorusTargetDown,
   cause=monitor) and no AgentSilent; started again: resolved.

Short settings come from the compose file (documented knobs only): Alertmanager group_wait
3 s, group_interval 6 s, repeat 1 h; Prometheus 2 s intervals; heard window 20 s.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from .conftest import Timings, get_json, json_lines, run, wait_until

pytestmark = pytest.mark.engine

AGENTS = 3
# docker-compose.test.yml: heard window 20 s, scrape/eval 2 s; AgentSilent `for: 30s`;
# ChorusTargetDown `for: 1m`; Alertmanager group_wait 3 s, group_interval 6 s.
AGENT_SILENT_BOUND_S = 20 + 2 + 2 + 30
TARGET_DOWN_BOUND_S = 2 + 2 + 60
GROUP_INTERVAL_S = 6
SLACK_S = 60


def _hostport(base: list[str], env: dict[str, str], service: str, port: int) -> str:
    hostport = run(*base, "port", service, str(port), env=env).stdout.strip().splitlines()[-1]
    assert hostport.startswith("127.0.0.1:"), hostport
    return f"http://{hostport}"


def _alerts_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    return list(record["body"]["alerts"])


def _mentions(
    records: list[dict[str, Any]], alertname: str, status: str, **labels: str
) -> list[dict[str, Any]]:
    """The notifications that carry alert `alertname` with `status` and these labels."""
    return [
        r
        for r in records
        if any(
            a["labels"].get("alertname") == alertname
            and a["status"] == status
            and all(a["labels"].get(k) == v for k, v in labels.items())
            for a in _alerts_of(r)
        )
    ]


def _failed_attempts(am: str) -> float:
    text = httpx.get(f"{am}/metrics", timeout=10).text
    return sum(
        float(m.group(1))
        for m in re.finditer(
            r'^alertmanager_notifications_failed_total\{integration="webhook"\} (\S+)$', text, re.M
        )
    )


def _am_alerts(am: str, alertname: str) -> dict[str, str]:
    """Alertmanager's active alerts `alertname`: agent name -> state (active, suppressed)."""
    alerts = get_json(f"{am}/api/v2/alerts")
    return {
        a["labels"].get("name", a["labels"].get("job", "")): a["status"]["state"]
        for a in alerts
        if a["labels"]["alertname"] == alertname
    }


def test_an_alert_reaches_the_webhook_once_is_silenced_retried_and_inhibited(
    compose_project: tuple[list[str], str], engine: dict[str, str], timings: Timings
) -> None:
    base, _ = compose_project
    base = [*base, "--profile", "monitoring"]
    env = {**engine, "CHORUS_AGENTS": str(AGENTS)}
    t0 = time.monotonic()
    try:
        run(*base, "up", "--detach", "--no-build", env=env, timeout=300)
        prom = _hostport(base, env, "prometheus", 9090)
        am = _hostport(base, env, "alertmanager", 9093)
        sink = _hostport(base, env, "alert-sink", 9095)
        timings.mark("compose up (mesh + Prometheus + Alertmanager + sink)")

        def notifications() -> list[dict[str, Any]]:
            return list(get_json(f"{sink}/notifications"))

        # 0. Converged: the monitor hears every agent, Prometheus sends to Alertmanager,
        # nothing fires (in Prometheus nor in Alertmanager).
        wait_until(
            f"monitor hears {AGENTS} agents, Prometheus knows its Alertmanager",
            lambda: (
                get_json(f"{prom}/api/v1/query?query=hmmm_peers_heard")["data"]["result"],
                get_json(f"{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"],
            ),
            lambda r: bool(r[0]) and float(r[0][0]["value"][1]) == AGENTS and bool(r[1]),
            timeout=240,
        )
        wait_until(
            "no alert firing in Prometheus nor active in Alertmanager",
            lambda: (
                [
                    a
                    for a in get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
                    if a["state"] == "firing"
                ],
                get_json(f"{am}/api/v2/alerts"),
            ),
            lambda r: not r[0] and not r[1],
            timeout=180,
        )
        timings.mark("mesh converged, nothing firing")

        containers = json_lines(run(*base, "ps", "--format", "json", env=env).stdout)
        agent_ids = sorted(c["ID"] for c in containers if c["Service"] == "chorus")
        assert len(agent_ids) == AGENTS, containers
        (a_id, a_name), (b_id, b_name) = [
            (cid, run("docker", "inspect", "-f", "{{.Config.Hostname}}", cid).stdout.strip())
            for cid in agent_ids[:2]
        ]
        heard = get_json(f"{prom}/api/v1/query?query=hmmm_peer_heard")["data"]["result"]
        peer_of = {r["metric"]["name"]: r["metric"]["peer_id"] for r in heard}
        a_peer = peer_of[a_name]

        # 1. The README's silence for B's maintenance, the webhook down, A and B stopped.
        silence_id = run(
            *base, "exec", "-T", "alertmanager", "amtool", "silence", "add",
            "--comment", f"maintenance of {b_name}", "--duration", "15m",
            "alertname=AgentSilent", f"name={b_name}", env=env,
        ).stdout.strip()  # fmt: skip
        assert re.fullmatch(r"[0-9a-f-]{36}", silence_id), silence_id
        baseline = len(notifications())
        failed_before = _failed_attempts(am)
        run(*base, "stop", "--timeout", "5", "alert-sink", env=env)
        run("docker", "stop", "--time", "5", a_id, b_id)
        stopped_at = time.monotonic()

        states = wait_until(
            f"Alertmanager: AgentSilent for {a_name} active, for {b_name} suppressed",
            lambda: _am_alerts(am, "AgentSilent"),
            lambda s: s == {a_name: "active", b_name: "suppressed"},
            timeout=AGENT_SILENT_BOUND_S + SLACK_S,
            interval=1,
        )
        print(f"AgentSilent in Alertmanager {time.monotonic() - stopped_at:.0f} s after the stop")
        wait_until(
            "Alertmanager's attempts to reach the stopped webhook fail",
            lambda: _failed_attempts(am),
            lambda n: n > failed_before,
            timeout=60,
            interval=1,
        )
        timings.mark(f"AgentSilent: {states}; the webhook down, attempts failing")

        run(*base, "start", "alert-sink", env=env)
        sink = _hostport(base, env, "alert-sink", 9095)  # a new host port after a start
        sink_back = time.monotonic()
        wait_until(
            f"the notification for {a_name}, once the webhook is back",
            lambda: _mentions(notifications()[baseline:], "AgentSilent", "firing", name=a_name),
            bool,
            timeout=2 * GROUP_INTERVAL_S + 30,
            interval=1,
        )
        print(f"delivered {time.monotonic() - sink_back:.1f} s after the webhook came back")
        timings.mark("the firing notification arrived after the webhook came back")

        # 2. A back: its resolved notification.
        run("docker", "start", a_id)
        wait_until(
            f"the resolved notification for {a_name}",
            lambda: _mentions(notifications()[baseline:], "AgentSilent", "resolved", name=a_name),
            bool,
            timeout=120,
            interval=1,
        )
        until_expiry = notifications()[baseline:]
        # B is silenced: in no notification so far.
        assert [r for r in until_expiry if b_name in str(r["body"]["alerts"])] == [], until_expiry
        timings.mark("a resolved notification for A, none for silenced B")

        # 3. The silence expired: B's notification now (the silence was what held it).
        run(*base, "exec", "-T", "alertmanager", "amtool", "silence", "expire", silence_id,
            env=env)  # fmt: skip
        wait_until(
            f"the notification for {b_name} once its silence expired",
            lambda: _mentions(notifications()[baseline:], "AgentSilent", "firing", name=b_name),
            bool,
            timeout=2 * GROUP_INTERVAL_S + 30,
            interval=1,
        )
        run("docker", "start", b_id)
        wait_until(
            f"AgentSilent for {b_name} resolved in Alertmanager",
            lambda: _am_alerts(am, "AgentSilent"),
            lambda s: not s,
            timeout=120,
            interval=1,
        )
        timings.mark("silence expired: B notified; B back")

        # 4. The monitor stopped: one notification about it, none per agent.
        before_monitor = len(notifications())
        run(*base, "stop", "--timeout", "5", "hmmm-monitor", env=env)
        monitor_stopped = time.monotonic()
        wait_until(
            "the notification about the monitor",
            lambda: _mentions(
                notifications()[before_monitor:], "ChorusTargetDown", "firing", job="hmmm-monitor"
            ),
            bool,
            timeout=TARGET_DOWN_BOUND_S + SLACK_S,
            interval=1,
        )
        print(f"monitor notified {time.monotonic() - monitor_stopped:.0f} s after its stop")
        run(*base, "start", "hmmm-monitor", env=env)
        wait_until(
            "the resolved notification about the monitor",
            lambda: _mentions(
                notifications()[before_monitor:], "ChorusTargetDown", "resolved", job="hmmm-monitor"
            ),
            bool,
            timeout=120,
            interval=1,
        )
        got = notifications()[before_monitor:]
        about_monitor = _mentions(got, "ChorusTargetDown", "firing", job="hmmm-monitor")
        assert len(about_monitor) == 1, got
        assert about_monitor[0]["body"]["groupLabels"] == {"cause": "monitor"}
        assert [a["labels"]["alertname"] for a in _alerts_of(about_monitor[0])] == [
            "ChorusTargetDown"
        ]
        assert _mentions(got, "AgentSilent", "firing") == [], got
        timings.mark("monitor stopped: one notification about it, none per agent; resolved")
        # Over the whole run (minutes of group intervals): exactly one firing and one
        # resolved notification for A, with what a person needs.
        got = notifications()[baseline:]
        firing_a = _mentions(got, "AgentSilent", "firing", name=a_name)
        assert len(firing_a) == 1, got
        (alert,) = [a for a in _alerts_of(firing_a[0]) if a["labels"].get("name") == a_name]
        assert alert["labels"]["peer_id"] == a_peer
        assert alert["labels"]["severity"] == "warning"
        assert alert["labels"]["cause"] == "agent"
        assert alert["annotations"]["runbook"] == "docs/runbooks.md#agentsilent"
        assert a_name in alert["annotations"]["summary"]
        assert a_peer in alert["annotations"]["description"]
        assert firing_a[0]["body"]["receiver"] == "webhook"
        assert firing_a[0]["body"]["groupLabels"] == {"cause": "agent"}
        assert len(_mentions(got, "AgentSilent", "resolved", name=a_name)) == 1, got
        assert len(_mentions(got, "AgentSilent", "firing", name=b_name)) == 1, got
        timings.mark("one firing + one resolved notification for A over the whole run")
        print(f"alerting test took {time.monotonic() - t0:.0f} s")
    finally:
        run(*base, "down", "--volumes", "--timeout", "5", check=False, env=env, timeout=180)
