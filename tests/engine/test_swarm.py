"""stack.yml on a real (single-node) Swarm: every agent discovered and heard, not "3 of 10".

`docker stack deploy` with 10 agent replicas -> WHOOSH, through the Swarm API (auto mode, the
Docker socket mounted), lists 10/10 healthy and the monitor hears 10/10 -> `docker service
scale` to 20 -> 20/20 and 20/20, with the same WHOOSH and monitor containers (no restart) ->
`docker stack rm` leaves no service, task container or network behind (and the per-slot
identity volumes, which a stack keeps by design, are removed).

stack.monitoring.yml is deployed with it: Prometheus finds every agent task through
`tasks.chorus` under the stack's prefix, 10 and then 20 (tests/engine/test_monitoring.py
covers the alerts and the dashboard).

An agent whose container dies comes back in the same slot with the same peer ID: its
identity seed lives on the slot's volume.

The stack file is deployed unchanged; only its documented environment variables are set
(faster intervals, free host ports, the test images).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import REPO, Timings, free_port, get_json, lines, run, wait_until

pytestmark = pytest.mark.engine

STACK = f"chorustest{os.getpid()}"


def _swarm_state() -> str:
    return run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


@pytest.fixture(scope="module")
def swarm(engine: dict[str, str]) -> Iterator[None]:
    """A Swarm this engine manages; initialised (and left afterwards) only if there was none."""
    state = _swarm_state()
    initialised = False
    had_gwbridge = bool(
        lines("docker", "network", "ls", "-q", "--filter", "name=^docker_gwbridge$")
    )
    if state == "inactive":
        run("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
        initialised = True
    elif state != "active":
        pytest.fail(f"Swarm state {state!r}: neither inactive nor active")
    if run("docker", "info", "--format", "{{.Swarm.ControlAvailable}}").stdout.strip() != "true":
        pytest.fail("this engine is in a Swarm but not a manager: cannot deploy a stack here")
    try:
        yield
    finally:
        if initialised:
            run("docker", "swarm", "leave", "--force", check=False)
            # `swarm init` created docker_gwbridge; leaving does not remove it.
            if not had_gwbridge:
                run("docker", "network", "rm", "docker_gwbridge", check=False)


def _leftovers() -> dict[str, list[str]]:
    label = f"label=com.docker.stack.namespace={STACK}"
    return {
        "services": lines("docker", "service", "ls", "-q", "--filter", label),
        "containers": lines("docker", "ps", "-aq", "--filter", label),
        "networks": lines("docker", "network", "ls", "-q", "--filter", label),
    }


def _identity_volumes() -> list[str]:
    return lines("docker", "volume", "ls", "-q", "--filter", f"name={STACK}_chorus-identity-")


def _stack_volumes() -> list[str]:
    return [*_identity_volumes(), *lines(
        "docker", "volume", "ls", "-q", "--filter", f"name={STACK}_prometheus-data"
    )]  # fmt: skip


def _remove_stack(timeout: float = 120) -> dict[str, list[str]]:
    run("docker", "stack", "rm", STACK, check=False)
    left = wait_until(
        f"stack {STACK} to be gone",
        _leftovers,
        lambda left: not any(left.values()),
        timeout=timeout,
        interval=1,
    )
    # Volumes outlive a stack on purpose (identities, Prometheus' data); the test's are
    # removed here.
    for volume in _stack_volumes():
        run("docker", "volume", "rm", volume, check=False)
    return {**left, "volumes": _stack_volumes()}


@pytest.fixture
def stack(swarm: None, engine: dict[str, str]) -> Iterator[dict[str, str]]:
    env = {
        **engine,
        "CHORUS_REPLICAS": "10",
        "CHORUS_HEALTH_INTERVAL": "5s",
        "AGENT_BROADCAST_INTERVAL_S": "5",
        "WHOOSH_POLL_INTERVAL_S": "2",
        "MONITOR_BOOTSTRAP_REFRESH_S": "3",
        "MONITOR_HEARD_WINDOW_S": "30",
        "MONITOR_LOG_MESSAGES_TO_STDOUT": "false",
        "WHOOSH_PUBLISHED_PORT": str(free_port()),
        "MONITOR_PUBLISHED_PORT": str(free_port()),
        "PROMETHEUS_PUBLISHED_PORT": str(free_port()),
        "PROMETHEUS_SCRAPE_INTERVAL": "5s",
        "PROMETHEUS_DNS_REFRESH_INTERVAL": "5s",
    }
    try:
        yield env
    finally:
        if any(_leftovers().values()):
            for svc in ("whoosh", "hmmm-monitor"):
                logs = run(
                    "docker", "service", "logs", "--tail", "15", f"{STACK}_{svc}", check=False
                )
                print(f"--- {svc} logs (tail)\n{(logs.stdout + logs.stderr)[-4000:]}")
            ps = run("docker", "service", "ps", "--no-trunc", f"{STACK}_chorus", check=False)
            print(f"--- agent tasks\n{ps.stdout[-4000:]}")
            try:
                _remove_stack()
            except AssertionError as exc:
                print(f"cleanup: {exc}")


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


def _check_identity_survives_a_crash(whoosh: str, agents: dict[str, Any]) -> None:
    """Kill slot 1's container: Swarm starts a new task in that slot, on the same volume."""
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
    for svc in ("chorus", "whoosh", "hmmm-monitor", "prometheus"):
        mode = run(
            "docker", "service", "inspect", "-f", "{{.Spec.EndpointSpec.Mode}}", f"{STACK}_{svc}"
        ).stdout.strip()
        assert mode == "dnsrr", (svc, mode)

    agents, cov = _wait_mesh(whoosh, monitor, 10, timeout=300)
    _check_listing(agents, 10)
    _check_bootstrap(whoosh, 10)
    assert cov["missing"] == []
    timings.mark("10/10 listed by WHOOSH and heard by the monitor")
    _wait_agent_targets(prometheus, 10, timeout=120)
    timings.mark("Prometheus scrapes 10/10 agents")

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
    assert left == {"services": [], "containers": [], "networks": [], "volumes": []}
    timings.mark("stack removed, nothing left")
