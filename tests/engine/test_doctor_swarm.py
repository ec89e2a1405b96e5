"""The mesh doctor on a real (single-node) Swarm: stack.yml with 3 agent replicas is
healthy and the doctor finds nothing at warning or above; then Swarm-level faults are made
for real, one stage after the other on the same stack, and the doctor names each with the
evidence a user needs and exits 1:

- a replica Swarm cannot place: the agent service scaled to 4 with at most 3 replicas per
  node, so slot 4 stays pending; ``agents_missing`` names the slot, its task, its state and
  Swarm's own error. Scaled back, the finding clears;
- the agent service re-created without ``endpoint_mode`` (Swarm's default, vip) and WHOOSH
  pointed at names instead of tasks (``WHOOSH_DISCOVERY=static`` with
  ``http://chorus:8080``, which resolves to the service's virtual IP, and
  ``http://tasks.chorus:8080``, which resolves to every agent) and at a stack-prefixed
  network that does not exist (``CHORUS_chorus_net`` while the stack is another one):
  ``agent_service_vip``, ``agent_name_not_a_task`` (the VIP), ``agent_name_fronts_several``
  (the task addresses) and ``swarm_network_not_found``.

The agent service is re-created, not switched with ``docker service update --endpoint-mode
vip``: on Docker 20.10 a service switched that way keeps no DNS record for its name (it
resolves to nothing, which ``agent_name_unresolved`` names; unit-tested), while a service
created with a VIP resolves to it, as a user's stack without ``endpoint_mode`` does.

The doctor runs on this host, against the ports WHOOSH and the monitor publish; what the
findings claim is compared with what ``docker inspect`` says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    REPO,
    Timings,
    get_json,
    lines,
    remove_stack,
    run,
    stack_environment,
    wait_until,
)

pytestmark = pytest.mark.engine

STACK = f"chorusdoc{os.getpid()}"
REPLICAS = 3


@pytest.fixture
def doctor_stack(swarm: None, engine: dict[str, str]) -> Iterator[dict[str, str]]:
    settings = {
        "CHORUS_REPLICAS": str(REPLICAS),
        "CHORUS_HEALTH_INTERVAL": "5s",
        "AGENT_BROADCAST_INTERVAL_S": "3",
        "WHOOSH_POLL_INTERVAL_S": "2",
        "MONITOR_BOOTSTRAP_REFRESH_S": "2",
        "MONITOR_HEARD_WINDOW_S": "20",
        "MONITOR_LOG_MESSAGES_TO_STDOUT": "false",
    }
    with stack_environment(STACK, engine, settings) as env:
        yield env


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


def _named_by_doctor(
    what: str,
    whoosh: str,
    monitor: str,
    ok: Callable[[dict[str, dict[str, Any]]], bool],
    timeout: float,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Wait until WHOOSH's findings satisfy ``ok``; then the doctor, which must fail (exit
    1). Returns WHOOSH's findings by id and the doctor's JSON report."""
    found = wait_until(
        f"WHOOSH to name {what}", lambda: _whoosh_findings(whoosh), ok, timeout, interval=2
    )
    code, report, text = doctor(whoosh, monitor)
    print(f"{what}:\n{text}")
    assert code == 1, text
    return found, report


def _whoosh_serious(whoosh: str) -> list[str]:
    return [i for i, f in _whoosh_findings(whoosh).items() if f["severity"] != "info"]


def _tasks(service: str) -> list[dict[str, Any]]:
    """The service's tasks Swarm wants running, as the Engine API describes them."""
    ids = lines("docker", "service", "ps", "-q", "--no-trunc", "--filter",
                "desired-state=running", service)  # fmt: skip
    # A task removed between the two commands is left out (inspect still prints the rest).
    found = run("docker", "inspect", *ids, check=False).stdout if ids else ""
    return list(json.loads(found or "[]"))


def _task_ips(service: str, network: str) -> list[str]:
    """The running tasks' own addresses on ``network``."""
    return sorted(
        str(att["Addresses"][0]).split("/", 1)[0]
        for task in _tasks(service)
        if task["Status"]["State"] == "running"
        for att in task.get("NetworksAttachments") or []
        if att["Network"]["Spec"]["Name"] == network
    )


def _virtual_ips(service: str) -> list[str]:
    endpoint = json.loads(run("docker", "service", "inspect", service).stdout)[0]["Endpoint"]
    return sorted(str(v["Addr"]).split("/", 1)[0] for v in endpoint.get("VirtualIPs") or [])


def _stack_with_default_endpoint_mode(path: Path) -> Path:
    """stack.yml whose agent service leaves ``endpoint_mode`` out (Swarm's default: vip),
    everything else as it is."""
    text = (REPO / "stack.yml").read_text()
    head, service, rest = text.partition("\n  chorus:\n")
    block, next_service, tail = rest.partition("\n  chorus-gateway:\n")
    line = "      endpoint_mode: dnsrr\n"
    assert service and next_service and block.count(line) == 1, "stack.yml changed shape"
    path.write_text(head + service + block.replace(line, "") + next_service + tail)
    return path


def _serious(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f["id"], f["source"])
        for f in report["findings"]
        if f["severity"] in ("critical", "warning")
    ]


def test_doctor_on_the_swarm(
    doctor_stack: dict[str, str], engine: dict[str, str], timings: Timings, tmp_path: Path
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

    # -- a replica Swarm cannot place ----------------------------------------------------
    agents = f"{STACK}_chorus"
    run(
        "docker", "service", "update", "--detach", "--replicas", str(REPLICAS + 1),
        "--replicas-max-per-node", str(REPLICAS), agents,
    )  # fmt: skip
    slot = REPLICAS + 1

    def only_the_new_slot_missing(fs: dict[str, dict[str, Any]]) -> bool:
        missing = fs.get("agents_missing", {}).get("evidence", {}).get("missing", [])
        # The scheduler writes its error a moment after the task appears.
        return [(r["slot"], r["state"], bool(r["error"])) for r in missing] == [
            (slot, "pending", True)
        ]

    found, report = _named_by_doctor(
        f"slot {slot} pending", whoosh, monitor, only_the_new_slot_missing, timeout=120
    )
    assert ("agents_missing", "whoosh") in _serious(report)
    missing = found["agents_missing"]
    assert missing["severity"] == "warning"  # the others are healthy
    assert (missing["evidence"]["expected"], missing["evidence"]["healthy"]) == (slot, REPLICAS)
    (row,) = missing["evidence"]["missing"]
    (task,) = [t for t in _tasks(agents) if t["Slot"] == slot]
    assert (row["task"], row["why"], row["task_id"]) == (
        f"{agents}.{slot}",
        "not_running",
        task["ID"],
    )
    assert (row["state"], row["error"]) == (task["Status"]["State"], task["Status"]["Err"])
    assert "max replicas per node" in row["error"], row  # Swarm's own words: why it waits
    assert "task that is not running" in missing["fix"]
    run(
        "docker", "service", "update", "--detach", "--replicas", str(REPLICAS),
        "--replicas-max-per-node", "0", agents,
    )  # fmt: skip
    wait_until("WHOOSH to find nothing once scaled back", lambda: _whoosh_serious(whoosh),
               lambda serious: serious == [], timeout=120)  # fmt: skip
    timings.mark("unplaceable replica named with its task error, cleared when scaled back")

    # -- VIP, names in front of the tasks, a prefixed network that does not exist --------
    run("docker", "service", "rm", agents)
    vip_stack = _stack_with_default_endpoint_mode(tmp_path / "stack.vip.yml")
    run(
        "docker", "stack", "deploy", "--resolve-image", "never", "-c", str(vip_stack), STACK,
        env=env,
    )  # fmt: skip
    run(
        "docker", "service", "update", "--detach",
        "--env-add", "WHOOSH_DISCOVERY=static",
        "--env-add", "WHOOSH_STATIC_AGENTS=http://chorus:8080,http://tasks.chorus:8080",
        "--env-add", "WHOOSH_SWARM_NETWORK=CHORUS_chorus_net",
        f"{STACK}_whoosh",
    )  # fmt: skip
    wanted = {
        "agent_service_vip",
        "agent_name_not_a_task",
        "agent_name_fronts_several",
        "swarm_network_not_found",
    }

    network = f"{STACK}_chorus_net"

    def named_with_every_agent(fs: dict[str, dict[str, Any]]) -> bool:
        # Until the replaced service's tasks are gone and the new ones all run, the names
        # resolve to a mix of both.
        if not wanted <= set(fs):
            return False
        on_vip = fs["agent_name_not_a_task"]["evidence"]
        several = fs["agent_name_fronts_several"]["evidence"]["resolves_to"]
        return on_vip["resolves_to"] == on_vip["service_virtual_ips"] and sorted(
            several
        ) == _task_ips(agents, network)

    found, report = _named_by_doctor(
        f"{sorted(wanted)}", whoosh, monitor, named_with_every_agent, timeout=180
    )
    assert {(i, "whoosh") for i in wanted} <= set(_serious(report))
    vips = _virtual_ips(agents)
    task_ips = _task_ips(agents, network)
    assert len(vips) == 1 and len(task_ips) == REPLICAS and not set(vips) & set(task_ips)
    vip = found["agent_service_vip"]
    assert vip["severity"] == "critical" and vip["evidence"]["service"] == agents
    assert [v.split("/")[0] for v in vip["evidence"]["virtual_ips"]] == vips
    assert f"--endpoint-mode dnsrr {agents}" in vip["fix"]
    on_vip = found["agent_name_not_a_task"]
    assert on_vip["severity"] == "critical" and "virtual IP" in on_vip["title"]
    assert (on_vip["evidence"]["name"], on_vip["evidence"]["configured_as"]) == (
        "chorus",
        "http://chorus:8080",
    )
    assert on_vip["evidence"]["resolves_to"] == on_vip["evidence"]["not_a_task"] == vips
    assert on_vip["evidence"]["service_virtual_ips"] == vips
    assert "WHOOSH_DISCOVERY=swarm" in on_vip["fix"]
    several = found["agent_name_fronts_several"]
    assert several["severity"] == "warning"
    assert (several["evidence"]["name"], several["evidence"]["configured_as"]) == (
        "tasks.chorus",
        "http://tasks.chorus:8080",
    )
    assert sorted(several["evidence"]["resolves_to"]) == task_ips
    assert "List each agent" in several["fix"]
    net = found["swarm_network_not_found"]
    assert net["evidence"]["configured"] == "CHORUS_chorus_net"
    assert net["evidence"]["similar_networks"] == [f"{STACK}_chorus_net"]
    assert "WHOOSH_SWARM_NETWORK=chorus_net" in net["fix"]
    timings.mark("VIP, names on the VIP and in front of the tasks, prefixed network named")

    assert remove_stack(STACK) == {"services": [], "containers": [], "networks": [], "volumes": []}
    timings.mark("stack removed, nothing left")
