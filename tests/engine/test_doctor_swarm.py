"""The mesh doctor on a real (single-node) Swarm: stack.yml with 3 agent replicas is
healthy and the doctor finds nothing at warning or above; then Swarm-level faults are made
for real and the doctor names them: the agent service switched to ``endpoint_mode: vip``,
and WHOOSH configured with a stack-prefixed network name that does not exist
(``CHORUS_chorus_net`` while the stack is another one). A broken replica's finding
(``agents_missing`` with the task's error) is checked by unit tests on recorded Swarm API
answers.

The doctor runs on this host, against the ports WHOOSH and the monitor publish.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import (
    REPO,
    Timings,
    create_identity_secret,
    free_port,
    get_json,
    remove_stack,
    run,
    stack_leftovers,
    wait_until,
)

pytestmark = pytest.mark.engine

STACK = f"chorusdoc{os.getpid()}"
SECRET = f"{STACK}_identity"
REPLICAS = 3


@pytest.fixture
def doctor_stack(swarm: None, engine: dict[str, str]) -> Iterator[dict[str, str]]:
    env = {
        **engine,
        "CHORUS_REPLICAS": str(REPLICAS),
        "CHORUS_HEALTH_INTERVAL": "5s",
        "AGENT_BROADCAST_INTERVAL_S": "3",
        "WHOOSH_POLL_INTERVAL_S": "2",
        "MONITOR_BOOTSTRAP_REFRESH_S": "2",
        "MONITOR_HEARD_WINDOW_S": "20",
        "MONITOR_LOG_MESSAGES_TO_STDOUT": "false",
        "WHOOSH_PUBLISHED_PORT": str(free_port()),
        "MONITOR_PUBLISHED_PORT": str(free_port()),
        "CHORUS_IDENTITY_SECRET": SECRET,
    }
    create_identity_secret(SECRET)
    try:
        yield env
    finally:
        if any(stack_leftovers(STACK).values()):
            logs = run("docker", "service", "logs", "--tail", "20", f"{STACK}_whoosh", check=False)
            print(f"--- whoosh logs (tail)\n{(logs.stdout + logs.stderr)[-3000:]}")
            remove_stack(STACK)
        run("docker", "secret", "rm", SECRET, check=False)


def doctor(whoosh: str, monitor: str) -> tuple[int, dict[str, Any], str]:
    """The doctor as a user runs it: JSON report and, for the log, the text one."""
    args = [
        sys.executable,
        "-m",
        "hmmm_monitor",
        "doctor",
        "--whoosh",
        whoosh,
        "--monitor",
        monitor,
    ]
    as_json = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in as_json.stderr, as_json.stderr
    text = subprocess.run(args, capture_output=True, text=True, timeout=60).stdout
    return as_json.returncode, json.loads(as_json.stdout), text


def _whoosh_findings(whoosh: str) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in get_json(f"{whoosh}/api/v1/diagnosis")["findings"]}


def _serious(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f["id"], f["source"])
        for f in report["findings"]
        if f["severity"] in ("critical", "warning")
    ]


def test_doctor_on_the_swarm(
    doctor_stack: dict[str, str], engine: dict[str, str], timings: Timings
) -> None:
    env = doctor_stack
    run(
        "docker", "stack", "deploy", "--resolve-image", "never",
        "-c", str(REPO / "stack.yml"), STACK, env=env,
    )  # fmt: skip
    whoosh = f"http://127.0.0.1:{env['WHOOSH_PUBLISHED_PORT']}"
    monitor = f"http://127.0.0.1:{env['MONITOR_PUBLISHED_PORT']}"

    # -- healthy: nothing at warning or above ------------------------------------------
    def clean() -> bool:
        cov = get_json(f"{monitor}/api/v1/coverage")
        if (cov["expected"], cov["heard"]) != (REPLICAS, REPLICAS):
            return False
        code, report, _ = doctor(whoosh, monitor)
        return code == 0 and not _serious(report)

    wait_until("a healthy stack the doctor passes", lambda: clean(), bool, timeout=240, interval=3)
    code, report, text = doctor(whoosh, monitor)
    print(f"\nhealthy Swarm:\n{text}")
    assert code == 0 and report["services"]["whoosh"]["skipped"] == []  # Swarm checks ran
    assert "agent_service_vip" in report["services"]["whoosh"]["checks"]
    timings.mark(f"stack of {REPLICAS} up, doctor passes")

    # -- VIP, a prefixed network that does not exist ---------------------------------------
    run("docker", "service", "update", "--detach", "--endpoint-mode", "vip", f"{STACK}_chorus")
    run(
        "docker", "service", "update", "--detach",
        "--env-add", "WHOOSH_SWARM_NETWORK=CHORUS_chorus_net",
        f"{STACK}_whoosh",
    )  # fmt: skip
    wanted = {"agent_service_vip", "swarm_network_not_found"}
    found = wait_until(
        f"WHOOSH to name {sorted(wanted)}",
        lambda: _whoosh_findings(whoosh),
        lambda fs: wanted <= set(fs),
        timeout=180,
        interval=3,
    )
    code, report, text = doctor(whoosh, monitor)
    print(f"VIP, prefixed network:\n{text}")
    assert code == 1
    vip = found["agent_service_vip"]
    assert vip["severity"] == "critical" and vip["evidence"]["service"] == f"{STACK}_chorus"
    assert vip["evidence"]["virtual_ips"], vip
    assert f"--endpoint-mode dnsrr {STACK}_chorus" in vip["fix"]
    net = found["swarm_network_not_found"]
    assert net["evidence"]["configured"] == "CHORUS_chorus_net"
    assert net["evidence"]["similar_networks"] == [f"{STACK}_chorus_net"]
    assert "WHOOSH_SWARM_NETWORK=chorus_net" in net["fix"]
    timings.mark("VIP, prefixed network named")

    assert remove_stack(STACK) == {"services": [], "containers": [], "networks": [], "volumes": []}
    timings.mark("stack removed, nothing left")
