"""stack.yml on a real multi-node Swarm: 3 engines in network namespaces (marker ``engine``).

scripts/engine/multinode.sh builds the Swarm (node1 manager, node2/3 workers, real VXLAN
between namespaces) and loads the images into every node. The stack is deployed unchanged
(only its documented environment variables) -> agent tasks land on several nodes -> WHOOSH,
through node1's own Docker socket, lists 10/10 healthy from the Swarm API with overlay-only
multiaddrs -> the monitor, on whichever node Swarm put it, hears 10/10 -> scale to 15 ->
`docker stack rm` leaves nothing on any node -> the script's `down` removes the nodes.

WHOOSH and the monitor are reached on their host-mode published ports at the nodes' namespace
addresses, from inside node1's namespace (`ip netns exec`): the bridge has no IP in the root
namespace. Skips only if this machine cannot create namespaces or engines (the script's
exit status 3: not root, no iproute2/dockerd); anything else is a failure.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import REPO, Timings, run, wait_until

pytestmark = pytest.mark.engine

SCRIPT = str(REPO / "scripts" / "engine" / "multinode.sh")
NODES = 3
# Own prefix and subnet: a cluster someone brought up by hand (default prefix chmn) is
# neither reused nor touched.
PREFIX = "chmt"
SUBNET = "10.77.1"
NET_ENV = {"MULTINODE_PREFIX": PREFIX, "MULTINODE_SUBNET": SUBNET}
STACK = "CHORUS"


class Cluster:
    def __init__(self, env: dict[str, str], up_s: float) -> None:
        self.env = env  # DOCKER_HOST of node1, the manager
        self.up_s = up_s

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        return run("docker", *args, env=self.env, check=check, timeout=timeout).stdout

    def node_docker(self, i: int, *args: str) -> str:
        sock = self.env["DOCKER_HOST"].replace("/node1/", f"/node{i}/")
        return run("docker", *args, env={"DOCKER_HOST": sock}).stdout

    def get_json(self, ip: str, port: int, path: str) -> Any:
        """GET from inside node1's namespace; to another node, that crosses the bridge."""
        proc = run(
            "ip", "netns", "exec", f"{PREFIX}-node1",
            "curl", "-sfS", "-m", "5", f"http://{ip}:{port}{path}",
            check=False, timeout=15,
        )  # fmt: skip
        if proc.returncode != 0:
            raise OSError(f"curl {ip}:{port}{path}: exit {proc.returncode} {proc.stderr.strip()}")
        return json.loads(proc.stdout)

    def running_nodes(self, service: str) -> list[str]:
        out = self.docker(
            "service", "ps", f"{STACK}_{service}", "--filter", "desired-state=running",
            "--format", "{{.Node}} {{.CurrentState}}",
        )  # fmt: skip
        return [ln.split()[0] for ln in out.splitlines() if " Running " in f"{ln} "]


def node_ip(node_name: str) -> str:
    return f"{SUBNET}.{node_name.removeprefix(f'{PREFIX}-node')}"


@pytest.fixture(scope="module")
def cluster(engine: dict[str, str]) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip("multi-node Swarm needs root (network namespaces, bridges, dockerd)")
    t0 = time.monotonic()
    try:
        up = run(SCRIPT, "up", str(NODES), check=False, timeout=300, env=NET_ENV)
        if up.returncode == 3:
            pytest.skip(f"cannot create namespaces/engines here: {up.stderr.strip()[-500:]}")
        if up.returncode != 0:
            raise AssertionError(f"multinode.sh up -> exit {up.returncode}\n{up.stderr[-3000:]}")
        host = run(SCRIPT, "env", env=NET_ENV).stdout.strip().removeprefix("export ")
        key, _, value = host.partition("=")
        assert key == "DOCKER_HOST", host
        yield Cluster({key: value}, time.monotonic() - t0)
    finally:
        down = run(SCRIPT, "down", check=False, timeout=300, env=NET_ENV)
        if down.returncode != 0:
            print(f"multinode.sh down -> exit {down.returncode}\n{down.stderr[-2000:]}")


def _stack_env(engine: dict[str, str], cluster: Cluster, replicas: int) -> dict[str, str]:
    return {
        **engine,
        **cluster.env,
        "CHORUS_REPLICAS": str(replicas),
        "CHORUS_HEALTH_INTERVAL": "5s",
        "AGENT_BROADCAST_INTERVAL_S": "5",
        "WHOOSH_POLL_INTERVAL_S": "2",
        "MONITOR_BOOTSTRAP_REFRESH_S": "3",
        "MONITOR_HEARD_WINDOW_S": "30",
        "MONITOR_LOG_MESSAGES_TO_STDOUT": "false",
    }


def _leftovers(cluster: Cluster) -> dict[str, list[str]]:
    label = f"label=com.docker.stack.namespace={STACK}"
    containers = []
    for i in range(1, NODES + 1):
        containers += cluster.node_docker(i, "ps", "-aq", "--filter", label).split()
    return {
        "services": cluster.docker("service", "ls", "-q", "--filter", label).split(),
        "networks": cluster.docker("network", "ls", "-q", "--filter", label).split(),
        "containers": containers,
    }


def _wait_mesh(cluster: Cluster, monitor_ip: str, n: int, timeout: float) -> dict[str, Any]:
    def whoosh_ok(d: dict[str, Any]) -> bool:
        s = d["summary"]
        return d["source"] == "swarm" and s["expected"] == n and s["healthy"] == n

    agents: dict[str, Any] = wait_until(
        f"WHOOSH on node1 to list {n}/{n} healthy agents from the Swarm API",
        lambda: cluster.get_json(f"{SUBNET}.1", 8080, "/api/v1/agents"),
        whoosh_ok,
        timeout=timeout,
    )
    wait_until(
        f"the monitor on {monitor_ip} to hear {n}/{n} agents",
        lambda: cluster.get_json(monitor_ip, 8081, "/api/v1/coverage"),
        lambda c: c["expected"] == n and c["connected"] == n and c["heard"] == n,
        timeout=timeout,
    )
    s = agents["summary"]
    assert s["discovered"] == n and s["missing"] == 0 and s["unreachable"] == 0, s
    assert agents["duplicate_peer_ids"] == []
    assert len({a["peer_id"] for a in agents["agents"]}) == n
    for a in agents["agents"]:
        # Only overlay addresses: never a node's 10.77.x, a docker_gwbridge 172.x or loopback.
        assert a["multiaddrs"], a
        assert all(m.startswith("/ip4/10.231.") for m in a["multiaddrs"]), a
    return agents


def test_stack_across_three_nodes(
    cluster: Cluster, engine: dict[str, str], timings: Timings
) -> None:
    timings.steps.append((f"multinode.sh up {NODES} (images loaded, Swarm joined)", cluster.up_s))
    nodes = cluster.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").split("\n")
    assert sorted(ln for ln in nodes if ln) == [f"{PREFIX}-node{i} Ready" for i in (1, 2, 3)]

    env = _stack_env(engine, cluster, 10)
    ok = False
    try:
        run(
            "docker", "stack", "deploy", "--resolve-image", "never",
            "-c", str(REPO / "stack.yml"), STACK, env=env,
        )  # fmt: skip
        placed = wait_until(
            "10 agent tasks running",
            lambda: Counter(cluster.running_nodes("chorus")),
            lambda c: sum(c.values()) == 10,
            timeout=180,
        )
        assert len(placed) >= 2, f"agents all on one node: {placed}"
        whoosh_nodes = wait_until(
            "WHOOSH running", lambda: cluster.running_nodes("whoosh"), bool, timeout=120
        )
        assert whoosh_nodes == [f"{PREFIX}-node1"]  # the only manager
        monitor_nodes = wait_until(
            "monitor running", lambda: cluster.running_nodes("hmmm-monitor"), bool, timeout=120
        )
        monitor_ip = node_ip(monitor_nodes[0])

        _wait_mesh(cluster, monitor_ip, 10, timeout=240)
        timings.mark(f"deploy -> 10/10 listed and heard (agents per node {dict(placed)})")

        cluster.docker("service", "scale", "--detach", f"{STACK}_chorus=15")
        _wait_mesh(cluster, monitor_ip, 15, timeout=240)
        placed = Counter(cluster.running_nodes("chorus"))
        timings.mark(f"scaled -> 15/15 listed and heard (agents per node {dict(placed)})")
        # WHOOSH and the monitor followed the scale-out live: still their first task.
        for svc in ("whoosh", "hmmm-monitor"):
            tasks = cluster.docker("service", "ps", "-q", f"{STACK}_{svc}").split()
            assert len(tasks) == 1, f"{svc} was restarted: {tasks}"
        ok = True
    finally:
        if not ok:
            for svc in ("whoosh", "hmmm-monitor", "chorus"):
                logs = cluster.docker(
                    "service", "logs", "--tail", "15", f"{STACK}_{svc}", check=False
                )
                print(f"--- {svc} logs (tail)\n{logs[-3000:]}")
            ps = cluster.docker("service", "ps", "--no-trunc", f"{STACK}_chorus", check=False)
            print(f"--- agent tasks\n{ps[-3000:]}")
        # On failure the fixture's `down` removes the nodes with whatever still runs.
        cluster.docker("stack", "rm", STACK, check=False)
    left = wait_until(
        "the stack to be gone from every node",
        lambda: _leftovers(cluster),
        lambda d: not any(d.values()),
        timeout=120,
        interval=1,
    )
    assert left == {"services": [], "networks": [], "containers": []}
    timings.mark("stack removed from every node")
