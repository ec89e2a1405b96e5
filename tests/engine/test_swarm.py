"""stack.yml on a real (single-node) Swarm: every agent discovered and heard, not "3 of 10".

`docker stack deploy` with 10 agent replicas -> WHOOSH, through the Swarm API (auto mode, the
Docker socket mounted), lists 10/10 healthy and the monitor hears 10/10 -> `docker service
scale` to 20 -> 20/20 and 20/20, with the same WHOOSH and monitor containers (no restart) ->
`docker stack rm` leaves no service, task container or network behind.

stack.monitoring.yml is deployed with it: Prometheus finds every agent task through
`tasks.chorus` under the stack's prefix, 10 and then 20 (tests/engine/test_monitoring.py
covers the alerts and the dashboard).

An agent whose container dies comes back in the same slot with the same peer ID: its
identity derives from the stack's identity secret and its slot.

The stack file is deployed unchanged; only its documented environment variables are set
(faster intervals, free host ports, the test images).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import (
    REPO,
    Timings,
    free_port,
    get_json,
    lines,
    remove_stack,
    run,
    stack_environment,
    wait_until,
)

pytestmark = pytest.mark.engine

STACK = f"chorustest{os.getpid()}"
SECRET = f"{STACK}_identity"


def _secrets() -> list[str]:
    return lines("docker", "secret", "ls", "-q", "--filter", f"name={SECRET}")


def _remove_stack() -> dict[str, list[str]]:
    left = remove_stack(STACK)
    # The identity secret outlives a stack on purpose (peer IDs); the test's is removed.
    run("docker", "secret", "rm", SECRET, check=False)
    return {**left, "secrets": _secrets()}


@pytest.fixture
def stack(swarm: None, engine: dict[str, str]) -> Iterator[dict[str, str]]:
    settings = {
        "CHORUS_REPLICAS": "10",
        "CHORUS_HEALTH_INTERVAL": "5s",
        "AGENT_BROADCAST_INTERVAL_S": "5",
        "WHOOSH_POLL_INTERVAL_S": "2",
        "MONITOR_BOOTSTRAP_REFRESH_S": "3",
        "MONITOR_HEARD_WINDOW_S": "30",
        "MONITOR_LOG_MESSAGES_TO_STDOUT": "false",
        "PROMETHEUS_PUBLISHED_PORT": str(free_port()),
        "PROMETHEUS_SCRAPE_INTERVAL": "5s",
        "PROMETHEUS_DNS_REFRESH_INTERVAL": "5s",
        "GATEWAY_PUBLISHED_PORT": str(free_port()),
        "GATEWAY_P2P_PUBLISHED_PORT": str(free_port()),
        # Required by stack.monitoring.yml; nothing listens there (inside Alertmanager's
        # own container), and tests/engine/test_alerting.py checks notifications.
        "ALERTMANAGER_WEBHOOK_URL": "http://127.0.0.1:9/chorus-test",
    }
    with stack_environment(STACK, engine, settings) as env:
        yield env


def _container_id(service: str) -> list[str]:
    return lines(
        "docker", "ps", "-q", "--no-trunc",
        "--filter", f"label=com.docker.swarm.service.name={STACK}_{service}",
    )  # fmt: skip


def _wait_mesh(whoosh: str, monitor: str, n: int, timeout: float) -> tuple[Any, Any]:
    """WHOOSH (Swarm API source) lists n/n healthy, then the monitor hears n/n."""

    def whoosh_ok(d: dict[str, Any]) -> bool:
        s = d["summary"]
        return s["expected"] == n and s["discovered"] == n and s["healthy"] == n

    agents = wait_until(
        f"WHOOSH to list {n}/{n} healthy agents through the Swarm API",
        lambda: get_json(f"{whoosh}/api/v1/agents"),
        whoosh_ok,
        timeout=timeout,
        interval=2,
    )
    cov = wait_until(
        f"monitor to hear {n}/{n} agents",
        lambda: get_json(f"{monitor}/api/v1/coverage"),
        lambda c: c["expected"] == n and c["connected"] == n and c["heard"] == n,
        timeout=timeout,
        interval=2,
    )
    return agents, cov


def _wait_agent_targets(prometheus: str, n: int, timeout: float) -> None:
    """Prometheus (stack.monitoring.yml) scrapes n agents found through tasks.chorus."""

    def agent_targets() -> list[dict[str, Any]]:
        targets = get_json(f"{prometheus}/api/v1/targets?state=active")["data"]
        return [t for t in targets["activeTargets"] if t["labels"]["job"] == "chorus-agent"]

    wait_until(
        f"Prometheus: {n} agent targets up (tasks.chorus)",
        agent_targets,
        lambda ts: len(ts) == n and all(t["health"] == "up" for t in ts),
        timeout=timeout,
    )


def _check_listing(agents: dict[str, Any], n: int) -> None:
    # "swarm" = the Swarm API; auto mode chose it because the socket is mounted.
    assert agents["source"] == "swarm", (agents["source"], agents.get("discovery_error"))
    assert agents["summary"]["missing"] == 0 and agents["summary"]["unreachable"] == 0
    assert agents["duplicate_peer_ids"] == []
    peer_ids = {a["peer_id"] for a in agents["agents"]}
    assert len(peer_ids) == n and None not in peer_ids
    # Every agent advertises its overlay address (10.231.0.0/16 by default) first, never
    # loopback; the bootstrap list's preferred multiaddr is the overlay one.
    for a in agents["agents"]:
        assert a["multiaddrs"] and a["multiaddrs"][0].startswith("/ip4/10.231."), a
        assert not any(m.startswith("/ip4/127.") for m in a["multiaddrs"]), a


def _check_bootstrap(whoosh: str, n: int) -> None:
    boot = get_json(f"{whoosh}/api/v1/bootstrap-peers")
    assert boot["count"] == n, boot["summary"]
    assert len({p["peer_id"] for p in boot["bootstrap_peers"]}) == n
    for p in boot["bootstrap_peers"]:
        assert p["multiaddr"].startswith("/ip4/10.231."), p
        # Every address listed is one the agent's key signed (its peer record).
        assert p["signed"] is True and p["record_seq"], p


def _check_closed_mesh(whoosh: str, monitor: str) -> None:
    """The stack's private network (the chorus_pnet secret) is on at every libp2p host:
    the monitor says so, and WHOOSH, which reads every agent's health, names no open one."""
    assert get_json(f"{monitor}/api/health")["private_network"] is True
    findings = get_json(f"{whoosh}/api/v1/diagnosis")["findings"]
    assert "open_mesh" not in {f["id"] for f in findings}, findings


def _check_identity_survives_a_crash(whoosh: str, agents: dict[str, Any]) -> None:
    """Kill slot 1's container: Swarm starts a new task in that slot, which derives the
    same identity from the secret and the slot."""
    name = f"{STACK}_chorus-1"  # AGENT_NAME = hostname = {{.Service.Name}}-{{.Task.Slot}}
    before = {a["name"]: a["peer_id"] for a in agents["agents"]}
    assert name in before, sorted(before)
    old = _container_of_slot_1()
    assert len(old) == 1, old
    run("docker", "kill", old[0])

    def back(d: dict[str, Any]) -> bool:
        listed = {a["name"]: a for a in d["agents"]}
        return (
            d["summary"]["healthy"] == len(before)
            and name in listed
            and listed[name]["state"] == "healthy"
            and _container_of_slot_1() not in ([], old)
        )

    after = wait_until(
        f"{name} to come back healthy in a new container",
        lambda: get_json(f"{whoosh}/api/v1/agents"),
        back,
        timeout=180,
        interval=2,
    )
    assert {a["name"]: a["peer_id"] for a in after["agents"]}[name] == before[name]


def _container_of_slot_1() -> list[str]:
    return lines(
        "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_chorus",
        "--filter", f"name={STACK}_chorus\\.1\\.",  # a regex: "chorus.1." also matches .10.
    )  # fmt: skip


def test_stack_10_then_scale_to_20(
    stack: dict[str, str], engine: dict[str, str], timings: Timings
) -> None:
    run(
        "docker", "stack", "deploy", "--resolve-image", "never",
        "-c", str(REPO / "stack.yml"), "-c", str(REPO / "stack.monitoring.yml"), STACK,
        env=stack,
    )  # fmt: skip
    timings.mark("stack deploy")
    prometheus = f"http://127.0.0.1:{stack['PROMETHEUS_PUBLISHED_PORT']}"
    whoosh = f"http://127.0.0.1:{stack['WHOOSH_PUBLISHED_PORT']}"
    monitor = f"http://127.0.0.1:{stack['MONITOR_PUBLISHED_PORT']}"

    # Every service uses DNS round robin: no VIP anywhere (they break libp2p dials).
    for svc in ("chorus", "chorus-gateway", "whoosh", "hmmm-monitor", "prometheus"):
        mode = run(
            "docker", "service", "inspect", "-f", "{{.Spec.EndpointSpec.Mode}}", f"{STACK}_{svc}"
        ).stdout.strip()
        assert mode == "dnsrr", (svc, mode)

    agents, cov = _wait_mesh(whoosh, monitor, 10, timeout=300)
    _check_listing(agents, 10)
    _check_bootstrap(whoosh, 10)
    _check_closed_mesh(whoosh, monitor)
    assert cov["missing"] == []
    timings.mark("10/10 listed by WHOOSH (signed) and heard by the monitor, mesh closed")
    _wait_agent_targets(prometheus, 10, timeout=120)
    timings.mark("Prometheus scrapes 10/10 agents")
    wait_until(
        "Prometheus to send its alerts to the stack's Alertmanager",
        lambda: get_json(f"{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"],
        lambda active: len(active) == 1,
        timeout=120,
    )
    timings.mark("Prometheus -> the stack's Alertmanager")

    _check_identity_survives_a_crash(whoosh, agents)
    timings.mark("killed agent back in its slot with the same peer ID")

    whoosh_ids, monitor_ids = _container_id("whoosh"), _container_id("hmmm-monitor")
    assert len(whoosh_ids) == 1 and len(monitor_ids) == 1, (whoosh_ids, monitor_ids)

    run("docker", "service", "scale", "--detach", f"{STACK}_chorus=20")
    agents, cov = _wait_mesh(whoosh, monitor, 20, timeout=420)
    _check_listing(agents, 20)
    _check_bootstrap(whoosh, 20)
    timings.mark("scaled: 20/20 listed and heard")
    _wait_agent_targets(prometheus, 20, timeout=120)
    timings.mark("Prometheus scrapes 20/20 agents")

    # Same WHOOSH and monitor containers: they followed the scale-out live.
    assert _container_id("whoosh") == whoosh_ids
    assert _container_id("hmmm-monitor") == monitor_ids
    for svc in ("whoosh", "hmmm-monitor"):
        tasks = lines("docker", "service", "ps", "-q", f"{STACK}_{svc}")
        assert len(tasks) == 1, f"{svc} was restarted: tasks {tasks}"

    left = _remove_stack()
    assert left == {"services": [], "containers": [], "networks": [], "volumes": [], "secrets": []}
    timings.mark("stack removed, nothing left")
