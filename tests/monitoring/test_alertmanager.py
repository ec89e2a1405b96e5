"""Alertmanager's configuration (monitoring/alertmanager/alertmanager.yml), as shipped and
rendered by the image's entrypoint: amtool accepts it and `make lint` rejects a broken one
with amtool's message; `amtool config routes test` says which receiver gets which alert; and
a real Alertmanager on loopback (Debian's 0.25, the image's binary) shows what amtool cannot:
grouping by cause, inhibition, a silence, and a retry when the webhook fails. The whole chain
with Prometheus and the services is tests/engine/test_alerting.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshcommon.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
AM_DIR = ROOT / "monitoring" / "alertmanager"
ENTRYPOINT = AM_DIR / "entrypoint.sh"
LOOPBACK = "127.0.97.3"  # this file's own loopback address
MONITOR = "hmmm-monitor:8080"


def tool(env_name: str, *names: str) -> str:
    path = os.environ.get(env_name) or next(filter(None, map(shutil.which, names)), None)
    if not path:
        pytest.fail(f"no {names[0]}: `make test-unit` installs it (scripts/engine/alertmanager.sh)")
    return path


def amtool() -> str:
    return tool("AMTOOL", "amtool")


def render(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The image's entrypoint, rendering the shipped file with `env` and checking it."""
    shutil.copy(AM_DIR / "alertmanager.yml", tmp_path / "alertmanager.yml")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALERTMANAGER_")}
    return subprocess.run(
        ["sh", str(ENTRYPOINT), "--check-only"],
        env={**clean, "AMTOOL": amtool(), "ALERTMANAGER_CONFIG": str(tmp_path / "alertmanager.yml"),
             **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def rendered(tmp_path: Path, **env: str) -> Path:
    proc = render(tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "alertmanager.rendered.yml"


# --- the file: checked, rendered, refused ------------------------------------------------


def test_the_shipped_file_is_valid_as_it_stands() -> None:
    proc = subprocess.run(
        [amtool(), "check-config", str(AM_DIR / "alertmanager.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 inhibit rules" in proc.stdout and "2 receivers" in proc.stdout


def test_the_entrypoint_renders_the_deploy_time_settings(tmp_path: Path) -> None:
    out = rendered(
        tmp_path,
        ALERTMANAGER_WEBHOOK_URL="http://relay.internal:9095/alerts",
        ALERTMANAGER_GROUP_WAIT="3s",
        ALERTMANAGER_REPEAT_INTERVAL="12h",
    ).read_text()
    assert "group_wait: 3s" in out and "repeat_interval: 12h" in out
    assert "group_interval: 5m" in out  # not set: the file's default
    # The critical receiver follows the default webhook unless told otherwise.
    assert out.count("url: http://relay.internal:9095/alerts") == 2
    out = rendered(
        tmp_path,
        ALERTMANAGER_WEBHOOK_URL="http://relay.internal:9095/alerts",
        ALERTMANAGER_CRITICAL_WEBHOOK_URL="http://pager.internal/hook",
    ).read_text()
    assert "url: http://relay.internal:9095/alerts" in out
    assert "url: http://pager.internal/hook" in out


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "no receiver: set ALERTMANAGER_WEBHOOK_URL"),
        ("http://user:s3cret@relay.internal/", "carries credentials or a query string"),
        ("https://relay.internal/hook?token=s3cret", "carries credentials or a query string"),
        ("relay.internal:9095", "must be an http:// or https:// URL"),
    ],
)
def test_the_entrypoint_refuses_a_missing_or_secret_bearing_webhook(
    tmp_path: Path, url: str, message: str
) -> None:
    proc = render(tmp_path, ALERTMANAGER_WEBHOOK_URL=url)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "s3cret" not in proc.stderr + proc.stdout


def test_a_bad_value_is_refused_with_amtools_message(tmp_path: Path) -> None:
    proc = render(
        tmp_path, ALERTMANAGER_WEBHOOK_URL="http://relay.internal/", ALERTMANAGER_GROUP_WAIT="soon"
    )
    assert proc.returncode != 0
    assert "not a valid duration string" in proc.stdout + proc.stderr


def test_make_lint_fails_on_a_broken_configuration_with_amtools_message(tmp_path: Path) -> None:
    broken = tmp_path / "alertmanager.yml"
    text = (AM_DIR / "alertmanager.yml").read_text()
    assert "receiver: critical\n" in text
    broken.write_text(text.replace("receiver: critical\n", "receiver: pager\n", 1))
    proc = subprocess.run(
        ["make", "--no-print-directory", "lint-monitoring", f"ALERTMANAGER_YML={broken}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert 'undefined receiver "pager" used in route' in proc.stdout + proc.stderr


# --- routes: amtool config routes test ---------------------------------------------------

ROUTES = [
    # (labels, receiver)
    ({"alertname": "AgentSilent", "severity": "warning", "cause": "agent"}, "webhook"),
    ({"alertname": "ChorusTargetDown", "severity": "warning", "cause": "monitor"}, "webhook"),
    ({"alertname": "MeshPartitioned", "severity": "critical", "cause": "network"}, "critical"),
    ({"alertname": "MonitorHearsNoAgent", "severity": "critical", "cause": "monitor"}, "critical"),
    ({"alertname": "DuplicatePeerIds", "severity": "critical", "cause": "identity"}, "critical"),
    ({"alertname": "WhooshUnreachable", "severity": "critical", "cause": "discovery"}, "critical"),
    ({"alertname": "LabelSyncFailing", "severity": "warning", "cause": "gitea"}, "webhook"),
    # Without a severity (someone's own rule): the default receiver, never dropped.
    ({"alertname": "SomethingElse"}, "webhook"),
]


@pytest.mark.parametrize(("labels", "receiver"), ROUTES, ids=[r[0]["alertname"] for r in ROUTES])
def test_routes(tmp_path: Path, labels: dict[str, str], receiver: str) -> None:
    config = rendered(tmp_path, ALERTMANAGER_WEBHOOK_URL="http://relay.internal/")
    proc = subprocess.run(
        [amtool(), "config", "routes", "test", f"--config.file={config}",
         f"--verify.receivers={receiver}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_of_the_rules_is_routed_by_its_severity(tmp_path: Path) -> None:
    rules = (ROOT / "monitoring" / "prometheus" / "rules" / "chorus-alerts.yml").read_text()
    blocks = re.split(r"^\s*- alert: ", rules, flags=re.M)[1:]
    config = rendered(tmp_path, ALERTMANAGER_WEBHOOK_URL="http://relay.internal/")
    for block in blocks:
        name = block.split()[0]
        severity = re.search(r"severity: (\w+)", block)
        cause = re.search(r"cause: (\S+)", block)
        assert severity and cause, name
        want = {"critical": "critical", "warning": "webhook"}[severity.group(1)]
        proc = subprocess.run(
            [amtool(), "config", "routes", "test", f"--config.file={config}",
             f"--verify.receivers={want}", f"alertname={name}", f"severity={severity.group(1)}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, (name, proc.stdout + proc.stderr)


# --- a real Alertmanager on loopback -----------------------------------------------------


class Sink:
    """A webhook on loopback: records every notification; fails the first `fail` POSTs."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail = 0
        self.attempts = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with sink._lock:
                    sink.attempts += 1
                    failing = sink.fail > 0
                    if failing:
                        sink.fail -= 1
                    else:
                        sink.received.append(body)
                self.send_response(503 if failing else 200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self) -> list[tuple[str, str, str]]:
        """(alertname, status, name or job) of every alert in every notification."""
        with self._lock:
            return [
                (a["labels"]["alertname"], a["status"], a["labels"].get("name", a["labels"]["job"]))
                for n in self.received
                for a in n["alerts"]
            ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Alertmanager:
    def __init__(self, url: str, sink: Sink) -> None:
        self.url, self.sink = url, sink

    def post(self, *alerts: dict[str, str], resolved: bool = False) -> None:
        """What Prometheus sends: firing alerts end in the future (it re-sends them), a
        resolved one ends now."""
        now = datetime.now(UTC)
        ends = now if resolved else now + timedelta(minutes=10)
        body = [
            {"labels": labels, "annotations": {"runbook": "docs/runbooks.md#x"},
             "startsAt": (now - timedelta(minutes=1)).isoformat(), "endsAt": ends.isoformat()}
            for labels in alerts
        ]  # fmt: skip
        httpx.post(f"{self.url}/api/v2/alerts", json=body, timeout=5).raise_for_status()

    def states(self) -> dict[str, str]:
        alerts = httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json()
        return {
            f"{a['labels']['alertname']}/{a['labels'].get('name', a['labels']['job'])}": a[
                "status"
            ]["state"]
            for a in alerts
        }


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    """The shipped file rendered as the image does (group_wait 1 s, group_interval 2 s),
    its webhook a Sink on loopback, run by Debian's Alertmanager 0.25 on loopback."""
    binary = tool("ALERTMANAGER", "prometheus-alertmanager", "alertmanager")
    sink = Sink()
    config = rendered(
        tmp_path,
        ALERTMANAGER_WEBHOOK_URL=sink.url,
        ALERTMANAGER_GROUP_WAIT="1s",
        ALERTMANAGER_GROUP_INTERVAL="2s",
    )
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    log = (tmp_path / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address={LOOPBACK}:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200,
                   within_s=30, what="Alertmanager ready")  # fmt: skip
        yield Alertmanager(url, sink)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        sink.close()


def agent_silent(name: str, instance: str = MONITOR) -> dict[str, str]:
    return {"alertname": "AgentSilent", "severity": "warning", "cause": "agent", "name": name,
            "peer_id": f"12D3KooW{name}", "instance": instance, "job": "hmmm-monitor"}  # fmt: skip


def monitor_alert(
    alertname: str, severity: str, cause: str, job: str = "hmmm-monitor"
) -> dict[str, str]:
    return {"alertname": alertname, "severity": severity, "cause": cause, "instance": MONITOR,
            "job": job}  # fmt: skip


def settle(am: Alertmanager, want: set[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Wait until the sink got `want`; then, for what must NOT come, two more group
    intervals (2 s each): an absence needs a window, and every group is flushed again within it."""
    wait_until(am.sink.alerts, lambda g: want <= set(g), within_s=30,
                        what=f"notifications {sorted(want)}")  # fmt: skip
    deadline = time.monotonic() + 4.5
    wait_until(time.monotonic, lambda now: now > deadline, within_s=10, what="2 group intervals")
    return am.sink.alerts()


def post_source(am: Alertmanager, alert: dict[str, str]) -> None:
    """Post an inhibiting alert and wait until Alertmanager holds it active: inhibition
    applies to alerts that arrive while the source fires (Prometheus sends both within one
    evaluation; in production group_wait, 30 s, covers the gap, here it is short)."""
    am.post(alert)
    key = f"{alert['alertname']}/{alert.get('name', alert['job'])}"
    wait_until(am.states, lambda s: s.get(key) == "active", within_s=30, what=f"{key} active")


def test_one_nodes_silent_agents_are_one_notification(alertmanager: Alertmanager) -> None:
    alertmanager.post(*(agent_silent(f"agent-{i}") for i in (1, 2, 3)))
    got = settle(alertmanager, {("AgentSilent", "firing", f"agent-{i}") for i in (1, 2, 3)})
    assert len(alertmanager.sink.received) == 1, got
    (notification,) = alertmanager.sink.received
    assert notification["groupLabels"] == {"cause": "agent"}
    assert notification["receiver"] == "webhook"


@pytest.mark.parametrize(
    "source",
    [
        monitor_alert("MonitorHearsNoAgent", "critical", "monitor"),
        monitor_alert("BootstrapStale", "warning", "discovery"),
        monitor_alert("MeshPartitioned", "critical", "network"),
        monitor_alert("ChorusTargetDown", "warning", "monitor"),
    ],
    ids=lambda s: s["alertname"],
)
def test_a_blind_stale_partitioned_or_unscraped_monitor_holds_back_its_agents_alerts(
    alertmanager: Alertmanager, source: dict[str, str]
) -> None:
    post_source(alertmanager, source)
    # Agents this monitor does not hear, and one that another monitor does not hear.
    alertmanager.post(
        agent_silent("agent-1"), agent_silent("agent-2"), agent_silent("agent-9", "other:8080")
    )
    got = settle(
        alertmanager,
        {(source["alertname"], "firing", "hmmm-monitor"), ("AgentSilent", "firing", "agent-9")},
    )
    assert [a for a in got if a[2] in ("agent-1", "agent-2")] == [], got
    assert alertmanager.states()["AgentSilent/agent-1"] == "suppressed"


def test_whoosh_unreachable_holds_back_the_stale_bootstrap_list(
    alertmanager: Alertmanager,
) -> None:
    post_source(alertmanager, monitor_alert("WhooshUnreachable", "critical", "discovery"))
    alertmanager.post(monitor_alert("BootstrapStale", "warning", "discovery"))
    got = settle(alertmanager, {("WhooshUnreachable", "firing", "hmmm-monitor")})
    assert [a for a in got if a[0] == "BootstrapStale"] == [], got


def test_a_silence_added_with_amtool_holds_back_that_agent_only(
    alertmanager: Alertmanager,
) -> None:
    proc = subprocess.run(
        [amtool(), f"--alertmanager.url={alertmanager.url}", "silence", "add",
         "--comment", "maintenance", "--duration", "1h", "alertname=AgentSilent", "name=agent-2"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    alertmanager.post(agent_silent("agent-1"), agent_silent("agent-2"))
    got = settle(alertmanager, {("AgentSilent", "firing", "agent-1")})
    assert [a for a in got if a[2] == "agent-2"] == [], got
    assert alertmanager.states()["AgentSilent/agent-2"] == "suppressed"


def test_a_failing_webhook_gets_the_notification_when_it_answers_again(
    alertmanager: Alertmanager,
) -> None:
    alertmanager.sink.fail = 3  # three 503s, then 200
    alertmanager.post(agent_silent("agent-1"))
    got = settle(alertmanager, {("AgentSilent", "firing", "agent-1")})
    assert alertmanager.sink.attempts >= 4
    assert got == [("AgentSilent", "firing", "agent-1")]


def test_a_resolved_alert_is_notified_as_resolved(alertmanager: Alertmanager) -> None:
    alertmanager.post(agent_silent("agent-1"))
    settle(alertmanager, {("AgentSilent", "firing", "agent-1")})
    alertmanager.post(agent_silent("agent-1"), resolved=True)
    got = settle(alertmanager, {("AgentSilent", "resolved", "agent-1")})
    assert got == [("AgentSilent", "firing", "agent-1"), ("AgentSilent", "resolved", "agent-1")]


def test_the_commented_receiver_examples_are_valid(tmp_path: Path) -> None:
    """Slack, e-mail, PagerDuty and the header token, uncommented as an operator would."""
    text = (AM_DIR / "alertmanager.yml").read_text()
    head, receivers = text.split("\nreceivers:\n")
    example = re.compile(r"^(\s*)# ((?:- )?[a-z_]+:(?: |$)|\s+)")
    uncommented = [
        example.sub(r"\1\2", ln) if example.match(ln) and ln.strip() != "#" else ln
        for ln in receivers.splitlines()
    ]
    assert (
        sum(ln != orig for ln, orig in zip(uncommented, receivers.splitlines(), strict=True)) >= 20
    )
    for key in ("slack_configs:", "email_configs:", "pagerduty_configs:", "credentials_file:"):
        assert any(key in ln and "#" not in ln for ln in uncommented), key
    (tmp_path / "examples.yml").write_text(head + "\nreceivers:\n" + "\n".join(uncommented))
    proc = subprocess.run(
        [amtool(), "check-config", str(tmp_path / "examples.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
