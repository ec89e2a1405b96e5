"""stack.yml on a real multi-node Swarm, day 1 and day 2 (marker ``engine``).

One 3-node Swarm for the module (scripts/engine/multinode.sh: node1 manager, node2/3
workers, each a dockerd in its own network namespace, real VXLAN between them) and one
deployment of the stack, deployed unchanged (only its documented environment variables).
Each test starts from the state the previous one left, in file order:

1. deploy 10 agents -> WHOOSH (the Swarm API through node1's socket) lists 10/10 with
   overlay-only multiaddrs, the monitor hears 10/10 -> scale to 15 -> 15/15.
2. scale 15 -> 8: WHOOSH and the monitor list 7 agents as `left` (scaled_down), none missing.
3. drain a worker: its slots move to the other nodes and keep their peer IDs (derived from
   the Swarm secret and the slot); while they move they are `left` (node_drained), never
   missing.
4. rolling update of every agent (`--image`) with the stack's policy: no agent silent for
   longer than one heard window, no two tasks with one peer ID, by WHOOSH's
   `duplicate_peer_ids` sampled through the update and by the monitor's message log.
   (`--force` replaces the tasks through the same stop-first policy; a second full update
   would add about 90 s to the suite.) Then the private network's key is rotated on the
   running stack (three rolling updates and one of the monitor, the README's runbook), with
   the same bound on every agent's silence.
5. an update to an image whose health check fails: Swarm rolls it back, 8/8 again.
6. a worker loses power: its agents stay expected (unreachable, then missing; never `left`)
   until Swarm runs their slots on the other nodes, with the same peer IDs; the node comes
   back and no identity runs twice.
7. a gateway agent publishes its libp2p port; a monitor in a namespace outside the Swarm,
   which reaches only the nodes' published ports, hears every agent through it with the
   mesh's key, and none without a key or with the key the rotation retired (the gateway
   counts each refusal with its reason).
8. `docker stack rm` leaves nothing on any node.

WHOOSH and the monitor are reached on their host-mode published ports at the nodes'
addresses, from inside node1's namespace (`ip netns exec`): the bridge has no IP in the
root namespace. Durations are printed at the end of the session. A machine that cannot
build the Swarm (not root, multinode.sh exit 3) skips, and fails under
CHORUS_REQUIRE_ENGINE=1 (`make test-engine`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    REPO,
    Timings,
    create_identity_secret,
    create_pnet_secret,
    run,
    skip_or_fail,
    wait_until,
)

pytestmark = pytest.mark.engine

SCRIPT = str(REPO / "scripts" / "engine" / "multinode.sh")
NODES = 3
# Own prefix and subnet: a cluster someone brought up by hand (default prefix chmn) is
# neither reused nor touched.
PREFIX = "chmt"
SUBNET = "10.77.1"
NET_ENV = {"MULTINODE_PREFIX": PREFIX, "MULTINODE_SUBNET": SUBNET}
STACK = "CHORUS"
AGENTS = f"{STACK}_chorus"
GATEWAYS = f"{STACK}_chorus-gateway"
SECRET = "chorus_identity"
PNET_SECRET = "chorus_pnet"
# Short enough that a lost node's agents are named missing before Swarm replaces them
# (about 25 s here), long enough for a rolling update's stop + start (about 10 s here).
HEARD_WINDOW_S = 20.0
BROADCAST_S = 5.0
# The documented knobs, faster than in production; nothing else of stack.yml changes.
STACK_ENV = {
    "CHORUS_HEALTH_INTERVAL": "5s",
    "CHORUS_HEALTH_START_PERIOD": "30s",
    "AGENT_BROADCAST_INTERVAL_S": f"{BROADCAST_S:g}",
    "WHOOSH_POLL_INTERVAL_S": "2",
    "MONITOR_BOOTSTRAP_REFRESH_S": "3",
    "MONITOR_HEARD_WINDOW_S": f"{HEARD_WINDOW_S:g}",
    "MONITOR_LOG_MESSAGES_TO_STDOUT": "false",
    "CHORUS_IDENTITY_SECRET": SECRET,
    "CHORUS_PNET_SECRET": PNET_SECRET,
}
OUTSIDE_MONITOR_PORT = 8090


class Cluster:
    def __init__(self, env: dict[str, str], up_s: float) -> None:
        self.env = env  # DOCKER_HOST of node1, the manager
        self.up_s = up_s

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        return run("docker", *args, env=self.env, check=check, timeout=timeout).stdout

    def node_docker(self, i: int, *args: str, check: bool = True, timeout: float = 120) -> str:
        sock = self.env["DOCKER_HOST"].replace("/node1/", f"/node{i}/")
        return run("docker", *args, env={"DOCKER_HOST": sock}, check=check, timeout=timeout).stdout

    def script(self, *args: str, timeout: float = 120) -> str:
        return run(SCRIPT, *args, env=NET_ENV, timeout=timeout).stdout

    def get_json(self, ip: str, port: int, path: str, netns: str = "node1") -> Any:
        """GET from inside a namespace (node1's by default); to another node, that crosses
        the bridge."""
        proc = run(
            "ip", "netns", "exec", f"{PREFIX}-{netns}",
            "curl", "-sfS", "-m", "5", f"http://{ip}:{port}{path}",
            check=False, timeout=15,
        )  # fmt: skip
        if proc.returncode != 0:
            raise OSError(f"curl {ip}:{port}{path}: exit {proc.returncode} {proc.stderr.strip()}")
        return json.loads(proc.stdout)

    def running(self, service: str) -> dict[int, str]:
        """Slot -> node of the service's running tasks."""
        out = self.docker(
            "service", "ps", service, "--filter", "desired-state=running",
            "--format", "{{.Name}} {{.Node}} {{.CurrentState}}",
        )  # fmt: skip
        slots = {}
        for ln in out.splitlines():
            name, node, state = ([*ln.split(" ", 2), "", ""])[:3]
            if state.startswith("Running"):
                slots[int(name.rsplit(".", 1)[1])] = node
        return slots


def node_ip(node_name: str) -> str:
    return f"{SUBNET}.{node_index(node_name)}"


def node_index(node_name: str) -> int:
    return int(node_name.removeprefix(f"{PREFIX}-node"))


def slot_of(agent_name: str) -> int:
    """``CHORUS_chorus-3`` (AGENT_NAME = hostname = {{.Service.Name}}-{{.Task.Slot}}) -> 3."""
    return int(agent_name.rsplit("-", 1)[1])


@pytest.fixture(scope="module")
def cluster(engine: dict[str, str]) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        skip_or_fail("multi-node Swarm needs root (network namespaces, bridges, dockerd)")
    t0 = time.monotonic()
    try:
        up = run(SCRIPT, "up", str(NODES), check=False, timeout=300, env=NET_ENV)
    except BaseException:  # timed out or interrupted half-way: remove what it created
        run(SCRIPT, "down", check=False, timeout=300, env=NET_ENV)
        raise
    # A failed `up` has removed what it created. One that found a live cluster of this prefix
    # (another checkout's run) created nothing, and that cluster must not be torn down here.
    if up.returncode == 3:
        skip_or_fail(f"cannot create namespaces/engines here: {up.stderr.strip()[-500:]}")
    if up.returncode != 0:
        raise AssertionError(f"multinode.sh up -> exit {up.returncode}\n{up.stderr[-3000:]}")
    try:
        host = run(SCRIPT, "env", env=NET_ENV).stdout.strip().removeprefix("export ")
        key, _, value = host.partition("=")
        assert key == "DOCKER_HOST", host
        yield Cluster({key: value}, time.monotonic() - t0)
    finally:
        down = run(SCRIPT, "down", check=False, timeout=300, env=NET_ENV)
        if down.returncode != 0:
            print(f"multinode.sh down -> exit {down.returncode}\n{down.stderr[-2000:]}")


@dataclass
class Mesh:
    """The deployed stack, as WHOOSH and the monitor report it."""

    cluster: Cluster
    env: dict[str, str]
    n: int = 10  # agent replicas now
    _monitor_ip: str | None = None

    def agents(self) -> dict[str, Any]:
        return dict(self.cluster.get_json(f"{SUBNET}.1", 8080, "/api/v1/agents"))

    def monitor(self, path: str) -> Any:
        """GET from the monitor, on whichever node it runs (looked up again when the
        address it had does not answer)."""
        if self._monitor_ip is not None:
            with contextlib.suppress(OSError):
                return self.cluster.get_json(self._monitor_ip, 8081, path)
        nodes = list(self.cluster.running(f"{STACK}_hmmm-monitor").values())
        if not nodes:
            raise OSError("the monitor runs nowhere")
        self._monitor_ip = node_ip(nodes[0])
        return self.cluster.get_json(self._monitor_ip, 8081, path)

    def coverage(self) -> dict[str, Any]:
        return dict(self.monitor("/api/v1/coverage"))

    def messages(self) -> list[dict[str, Any]]:
        return list(self.monitor("/api/v1/messages?type=availability&limit=5000")["messages"])

    def peer_of_slot(self, agents: dict[str, Any] | None = None) -> dict[int, str]:
        listed = (agents or self.agents())["agents"]
        return {
            slot_of(a["name"]): a["peer_id"]
            for a in listed
            if a["state"] == "healthy"
            and a["name"].startswith(f"{AGENTS}-")
            and not a["name"].startswith(f"{GATEWAYS}-")
        }

    def wait(self, n: int, timeout: float, gateways: int = 0) -> dict[str, Any]:
        """WHOOSH lists n agents (+ gateways) healthy, then the monitor hears them all."""
        total = n + gateways

        def whoosh_ok(d: dict[str, Any]) -> bool:
            s = d["summary"]
            return d["source"] == "swarm" and s["expected"] == total and s["healthy"] == total

        agents: dict[str, Any] = wait_until(
            f"WHOOSH on node1 to list {total}/{total} healthy agents from the Swarm API",
            self.agents,
            whoosh_ok,
            timeout=timeout,
        )
        wait_until(
            f"the monitor to hear {total}/{total} agents",
            self.coverage,
            lambda c: c["expected"] == total and c["connected"] == total and c["heard"] == total,
            timeout=timeout,
        )
        s = agents["summary"]
        assert s["discovered"] == total and s["missing"] == 0 and s["unreachable"] == 0, s
        assert agents["duplicate_peer_ids"] == []
        assert len({a["peer_id"] for a in agents["agents"]}) == total
        for a in agents["agents"]:
            # The overlay address first; only a gateway also has its node's address.
            assert a["multiaddrs"] and a["multiaddrs"][0].startswith("/ip4/10.231."), a
            extra = [m for m in a["multiaddrs"] if not m.startswith("/ip4/10.231.")]
            assert not extra or a["name"].startswith(f"{GATEWAYS}-"), a
        self.n = n
        return agents

    def update_status(self, service: str = AGENTS) -> dict[str, Any]:
        out = self.cluster.docker("service", "inspect", "-f", "{{json .UpdateStatus}}", service)
        return dict(json.loads(out) or {}) if out.strip() not in ("", "null") else {}

    def update(self, *args: str, ends_in: str, timeout: float = 420) -> dict[str, Any]:
        """``docker service update`` of the agents; returns once this update (not an
        earlier one) reached the state ``ends_in``."""
        before = self.update_status().get("StartedAt")
        self.cluster.docker("service", "update", "--detach", *args, AGENTS)
        return dict(
            wait_until(
                f"the update ({' '.join(args)}) to end in {ends_in}",
                self.update_status,
                lambda u: u.get("StartedAt") != before and u.get("State") == ends_in,
                timeout=timeout,
                interval=2,
            )
        )


@dataclass
class Samples:
    """What WHOOSH and the monitor said, sampled about every second in the background
    while something happens (a scale-down, a drain, an update, a node loss)."""

    mesh: Mesh
    t0: float = field(default_factory=time.monotonic)
    whoosh: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    monitor: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Samples:
        self._thread = threading.Thread(target=self._run, name="samples", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            for into, probe in (
                (self.whoosh, self.mesh.agents),
                (self.monitor, self.mesh.coverage),
            ):
                try:
                    into.append((time.monotonic() - self.t0, probe()))
                except (OSError, AssertionError, ValueError, subprocess.TimeoutExpired) as exc:
                    self.errors[type(exc).__name__] += 1
            self._stop.wait(1.0)

    # -- what was seen -------------------------------------------------------------
    def duplicates(self) -> list[Any]:
        return [(t, d["duplicate_peer_ids"]) for t, d in self.whoosh if d["duplicate_peer_ids"]]

    def left_seen(self, source: str = "whoosh") -> dict[str, set[str]]:
        """Peer ID -> every reason it was listed under `left` with."""
        seen: dict[str, set[str]] = {}
        for _, doc in self.whoosh if source == "whoosh" else self.monitor:
            for entry in doc.get("left", []):
                seen.setdefault(entry["peer_id"], set()).add(entry["reason"])
        return seen

    def missing_seen(self) -> dict[str, list[float]]:
        """Peer ID -> the sample times the monitor named it missing."""
        seen: dict[str, list[float]] = {}
        for t, cov in self.monitor:
            for m in cov["missing"]:
                seen.setdefault(m["peer_id"], []).append(t)
        return seen

    def first(self, source: str, ok: Callable[[dict[str, Any]], bool]) -> float | None:
        for t, doc in self.whoosh if source == "whoosh" else self.monitor:
            if ok(doc):
                return t
        return None


@contextlib.contextmanager
def sampling(mesh: Mesh) -> Iterator[Samples]:
    samples = Samples(mesh).start()
    try:
        yield samples
    finally:
        samples.stop()


@pytest.fixture(scope="module")
def day2(
    cluster: Cluster, engine: dict[str, str], request: pytest.FixtureRequest
) -> Iterator[Mesh]:
    """The stack, deployed by the first test and removed by the last; when a test failed,
    the logs are printed and the fixture removes it."""
    env = {**engine, **cluster.env, **STACK_ENV, "CHORUS_REPLICAS": "10"}
    create_identity_secret(SECRET, cluster.env)
    env["CHORUS_PNET_KEY"] = create_pnet_secret(PNET_SECRET, cluster.env)
    failed_before = request.session.testsfailed
    m = Mesh(cluster, env)
    try:
        yield m
    finally:
        if request.session.testsfailed > failed_before:
            for svc in ("whoosh", "hmmm-monitor", "chorus", "chorus-gateway"):
                logs = cluster.docker(
                    "service", "logs", "--tail", "15", f"{STACK}_{svc}", check=False
                )
                print(f"--- {svc} logs (tail)\n{logs[-3000:]}")
            ps = cluster.docker("service", "ps", "--no-trunc", AGENTS, check=False)
            print(f"--- agent tasks\n{ps[-4000:]}")
        # Normally gone already (the last test); the cluster's `down` removes the rest.
        cluster.docker("stack", "rm", STACK, check=False)


# -- 1. deploy and scale out ------------------------------------------------------------
def test_stack_across_three_nodes(cluster: Cluster, day2: Mesh, timings: Timings) -> None:
    timings.steps.append((f"multinode.sh up {NODES} (images loaded, Swarm joined)", cluster.up_s))
    nodes = cluster.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").split("\n")
    assert sorted(ln for ln in nodes if ln) == [f"{PREFIX}-node{i} Ready" for i in (1, 2, 3)]
    run(
        "docker", "stack", "deploy", "--resolve-image", "never",
        "-c", str(REPO / "stack.yml"), STACK, env=day2.env,
    )  # fmt: skip
    placed = wait_until(
        "10 agent tasks running",
        lambda: Counter(cluster.running(AGENTS).values()),
        lambda c: sum(c.values()) == 10,
        timeout=180,
    )
    assert len(placed) >= 2, f"agents all on one node: {placed}"
    whoosh_nodes = wait_until(
        "WHOOSH running", lambda: cluster.running(f"{STACK}_whoosh"), bool, timeout=120
    )
    assert list(whoosh_nodes.values()) == [f"{PREFIX}-node1"]  # the only manager
    agents = day2.wait(10, timeout=240)
    timings.mark(f"deploy -> 10/10 listed and heard (agents per node {dict(placed)})")
    # Identities derive from the slot: each slot's peer ID is its own.
    assert len(set(day2.peer_of_slot(agents).values())) == 10

    cluster.docker("service", "scale", "--detach", f"{AGENTS}=15")
    day2.wait(15, timeout=240)
    placed = Counter(cluster.running(AGENTS).values())
    timings.mark(f"scaled -> 15/15 listed and heard (agents per node {dict(placed)})")
    # WHOOSH and the monitor followed the scale-out live: still their first task.
    for svc in ("whoosh", "hmmm-monitor"):
        tasks = cluster.docker("service", "ps", "-q", f"{STACK}_{svc}").split()
        assert len(tasks) == 1, f"{svc} was restarted: {tasks}"


# -- 2. scale-down is not a failure -----------------------------------------------------
def test_scale_down_reports_left_not_missing(day2: Mesh, timings: Timings) -> None:
    before = day2.peer_of_slot()
    assert sorted(before) == list(range(1, 16)), before
    with sampling(day2) as samples:
        day2.cluster.docker("service", "scale", "--detach", f"{AGENTS}=8")
        agents = wait_until(
            "WHOOSH: 8/8 healthy and 7 agents left (scaled_down)",
            day2.agents,
            lambda d: (
                d["summary"]["healthy"] == 8
                and sum(e["reason"] == "scaled_down" for e in d["left"]) == 7
            ),
            timeout=120,
            interval=1,
        )
        timings.mark("scale 15 -> 8: WHOOSH lists 7 left (scaled_down)")
        cov = wait_until(
            "the monitor: 8/8 heard, 7 left, none missing",
            day2.coverage,
            lambda c: (c["expected"], c["heard"], len(c["left"])) == (8, 8, 7) and not c["missing"],
            timeout=120,
            interval=1,
        )
        timings.mark("the monitor lists 7 left, 0 missing, 8/8 heard")
    # Swarm chooses which slots stay (by placement, not by number); those keep their peers.
    kept = day2.peer_of_slot(agents)
    assert len(kept) == 8 and all(before[slot] == peer for slot, peer in kept.items())
    gone = {slot: peer for slot, peer in before.items() if slot not in kept}
    s = agents["summary"]
    assert (s["expected"], s["healthy"], s["missing"], s["left"]) == (8, 8, 0, 7), s
    assert {e["peer_id"]: e["reason"] for e in agents["left"]} == dict.fromkeys(
        gone.values(), "scaled_down"
    )
    assert {e["name"] for e in agents["left"]} == {f"{AGENTS}-{slot}" for slot in gone}
    assert {e["peer_id"]: e["reason"] for e in cov["left"]} == dict.fromkeys(
        gone.values(), "scaled_down"
    )
    assert cov["unexpected"] == []  # their last messages are still within the window
    # Never missing on the way: the monitor stopped expecting them, it did not lose them.
    assert not set(samples.missing_seen()) & set(gone.values()), samples.missing_seen()
    day2.n = 8


# -- 3. a drained node's slots move with their identities -------------------------------
def _busiest_worker(day2: Mesh) -> tuple[dict[int, str], str, list[int]]:
    """The agents' placement (8/8 first), and the worker without the monitor that runs
    the most agents, with their slots: the node a drain or a power loss takes away."""
    day2.wait(8, timeout=120)
    placement = day2.cluster.running(AGENTS)
    monitor_node = next(iter(day2.cluster.running(f"{STACK}_hmmm-monitor").values()))
    workers = [f"{PREFIX}-node{i}" for i in (2, 3) if f"{PREFIX}-node{i}" != monitor_node]
    node = max(workers, key=lambda w: sum(1 for n in placement.values() if n == w))
    slots = sorted(slot for slot, n in placement.items() if n == node)
    assert slots, f"no agent on {node}: {placement}"
    return placement, node, slots


def test_drain_moves_slots_with_their_peer_ids(day2: Mesh, timings: Timings) -> None:
    cluster = day2.cluster
    _, node, moved = _busiest_worker(day2)
    peers = day2.peer_of_slot()
    try:
        with sampling(day2) as samples:
            cluster.docker("node", "update", "--availability", "drain", node)
            after = wait_until(
                f"slots {sorted(moved)} to run on other nodes, 8/8 healthy",
                lambda: (cluster.running(AGENTS), day2.agents()),
                lambda v: (
                    len(v[0]) == 8 and node not in v[0].values() and v[1]["summary"]["healthy"] == 8
                ),
                timeout=180,
                interval=1,
            )
            timings.mark(f"drain {node}: slots {sorted(moved)} moved, WHOOSH 8/8")
            day2.wait(8, timeout=120)
            timings.mark("the monitor hears 8/8 again")
    finally:
        cluster.docker("node", "update", "--availability", "active", node)
    # Same slot, other node, same peer ID: the identity followed the slot.
    assert day2.peer_of_slot(after[1]) == peers
    assert all(after[0][slot] != node for slot in moved)
    moved_peers = {peers[slot] for slot in moved}
    # Reported as left while they moved (with why), and never as missing.
    for source in ("whoosh", "monitor"):
        seen = samples.left_seen(source)
        reasons = {p: seen.get(p) for p in moved_peers}
        assert reasons == {p: {"node_drained"} for p in moved_peers}, (source, seen)
    assert not set(samples.missing_seen()) & moved_peers
    assert samples.duplicates() == []
    assert not {e["peer_id"] for e in day2.agents()["left"]} & moved_peers  # back


# -- 4. rolling updates ------------------------------------------------------------------
def _silences(messages: list[dict[str, Any]], since: float, until: float) -> dict[str, float]:
    """Per sender: the longest time between two of its messages (the monitor's receive
    times) in [since, until], the gap before its first and after its last included."""
    times: dict[str, list[float]] = {}
    for m in messages:
        times.setdefault(m["from"], []).append(float(m["received_at"]))
    longest = {}
    for sender, ts in times.items():
        inside = sorted(t for t in ts if since <= t <= until)
        edges = [since, *inside, until]
        longest[sender] = max(b - a for a, b in itertools.pairwise(edges))
    return longest


def _overlapping_addresses(messages: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Peers whose availability messages came from two addresses at overlapping times:
    two tasks holding one identity at once. Judged by when each message was published
    (the sender's own timestamp; every node shares this machine's clock), not when the
    monitor received it: a message GossipSub delivers late through IHAVE/IWANT gossip
    (seconds, on a busy machine) must not look like a second task."""
    spans: dict[str, dict[tuple[str, ...], list[float]]] = {}
    for m in messages:
        payload = m.get("payload") or {}
        addrs = tuple(payload.get("multiaddrs") or ())
        at = _published_at(payload, float(m["received_at"]))
        span = spans.setdefault(m["from"], {}).setdefault(addrs, [at, at])
        span[0], span[1] = min(span[0], at), max(span[1], at)
    found = {}
    for sender, by_addr in spans.items():
        ordered = sorted(by_addr.items(), key=lambda kv: kv[1][0])
        for (a, sa), (b, sb) in itertools.pairwise(ordered):
            if sb[0] <= sa[1]:
                found[sender] = [",".join(a), ",".join(b)]
    return found


def _published_at(payload: dict[str, Any], fallback: float) -> float:
    try:
        return datetime.fromisoformat(str(payload["timestamp"])).timestamp()
    except (KeyError, ValueError):
        return fallback


def _rolling_update(day2: Mesh, timings: Timings, what: str, *args: str) -> None:
    peers = day2.peer_of_slot()
    since = time.time()
    with sampling(day2) as samples:
        day2.update(*args, ends_in="completed")
        timings.mark(f"{what}: 8 agents updated (parallelism 2, stop-first)")
        day2.wait(8, timeout=180)
        until = time.time()
        timings.mark(f"{what}: the monitor hears 8/8")
    messages = day2.messages()
    silences = _silences(messages, since, until)
    longest = {p: round(silences.get(p, until - since), 1) for p in peers.values()}
    print(f"\n{what}: longest silence per agent (s): {sorted(longest.values())}")
    assert max(longest.values()) <= HEARD_WINDOW_S, longest
    assert samples.duplicates() == [], samples.duplicates()
    assert _overlapping_addresses(messages) == {}
    # Every slot kept its identity through the update.
    assert day2.peer_of_slot() == peers
    timings.steps.append((f"{what}: longest silence of an agent", max(longest.values())))


def test_rolling_update_keeps_every_agent_heard(day2: Mesh, timings: Timings) -> None:
    for i in range(1, NODES + 1):  # a "new" image on every node (no registry here)
        day2.cluster.node_docker(i, "tag", day2.env["AGENT_IMAGE"], "chorus-agent:next")
    day2.wait(8, timeout=120)
    _rolling_update(day2, timings, "--image", "--image", "chorus-agent:next")
    images = day2.cluster.docker(
        "service", "ps", AGENTS, "--filter", "desired-state=running", "--format", "{{.Image}}"
    ).split()
    assert images == ["chorus-agent:next"] * 8


# -- 4b. the private network's key is rotated on the running stack -------------------------
NEXT_PNET_SECRET = "chorus_pnet_next"


def _update_service(day2: Mesh, service: str, *args: str) -> None:
    """``docker service update`` of another service than the agents' (the monitor, the
    gateways); waits for it to complete when it has tasks to replace."""
    cluster = day2.cluster
    before = day2.update_status(service).get("StartedAt")
    cluster.docker("service", "update", "--detach", *args, service)
    if not cluster.running(service):
        return  # no task (gateways scaled to 0): the spec alone changed
    wait_until(
        f"the update of {service} to complete",
        lambda: day2.update_status(service),
        lambda u: u.get("StartedAt") != before and u.get("State") == "completed",
        timeout=300,
    )


def test_pnet_key_rotation_keeps_every_agent_heard(day2: Mesh, timings: Timings) -> None:
    """The README's rotation runbook, on the running stack: every agent first accepts the
    new key as well (its listener tells the keys apart by the first bytes of multistream),
    then dials with it, then drops the old one. The monitor switches to the new key once
    every agent accepts it. No agent may be unheard longer than a heard window in any phase."""
    cluster = day2.cluster
    day2.wait(8, timeout=120)
    new_key = create_pnet_secret(NEXT_PNET_SECRET, cluster.env)
    nxt, old = "/run/secrets/chorus_pnet_next", "/run/secrets/chorus_pnet"
    mount = f"source={NEXT_PNET_SECRET},target=chorus_pnet_next,uid=10001,mode=0400"
    accept_new = ("--secret-add", mount, "--env-add", f"AGENT_PNET_ACCEPT_KEY_FILES={nxt}")
    dial_new = (
        "--env-add", f"AGENT_PNET_KEY_FILE={nxt}",
        "--env-add", f"AGENT_PNET_ACCEPT_KEY_FILES={old}",
    )  # fmt: skip
    new_only = ("--env-rm", "AGENT_PNET_ACCEPT_KEY_FILES", "--secret-rm", PNET_SECRET)

    _rolling_update(day2, timings, "pnet rotation 1/3 (accept the new key)", *accept_new)
    _update_service(day2, GATEWAYS, *accept_new)
    _update_service(
        day2, f"{STACK}_hmmm-monitor",
        "--secret-add", mount, "--env-add", f"MONITOR_PNET_KEY_FILE={nxt}",
    )  # fmt: skip
    day2.wait(8, timeout=180)
    timings.mark("pnet rotation: the monitor dials with the new key, hears 8/8")
    _rolling_update(day2, timings, "pnet rotation 2/3 (dial with the new key)", *dial_new)
    _update_service(day2, GATEWAYS, *dial_new)
    _rolling_update(day2, timings, "pnet rotation 3/3 (the new key only)", *new_only)
    _update_service(day2, GATEWAYS, *new_only)
    # From now on the mesh's key is the new one (the outside monitor below needs it).
    day2.env["CHORUS_PNET_KEY_RETIRED"] = day2.env["CHORUS_PNET_KEY"]
    day2.env["CHORUS_PNET_KEY"] = new_key


# -- 5. a failed update is rolled back ---------------------------------------------------
def test_failed_update_is_rolled_back(day2: Mesh, timings: Timings, tmp_path: Path) -> None:
    # An image whose health check never passes: the agent itself is the same.
    (tmp_path / "Dockerfile").write_text(
        "FROM chorus-agent:next\nHEALTHCHECK --interval=5s --retries=1 CMD false\n"
    )
    for i in range(1, NODES + 1):
        run(
            "docker", "build", "-q", "-t", "chorus-agent:unhealthy", str(tmp_path),
            env={"DOCKER_HOST": day2.cluster.env["DOCKER_HOST"].replace("/node1/", f"/node{i}/"),
                 "DOCKER_BUILDKIT": "0"},
        )  # fmt: skip
    day2.wait(8, timeout=120)
    timings.mark("chorus-agent:unhealthy built on every node")
    with sampling(day2) as samples:
        status = day2.update("--image", "chorus-agent:unhealthy", ends_in="rollback_completed")
        print(f"\nrollback: {status.get('Message')}")
        timings.mark("update to the unhealthy image -> rolled back")
        day2.wait(8, timeout=180)
        timings.mark("8/8 listed and heard after the rollback")
    spec_image = day2.cluster.docker(
        "service", "inspect", "-f", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", AGENTS
    ).strip()
    assert spec_image == "chorus-agent:next"
    images = day2.cluster.docker(
        "service", "ps", AGENTS, "--filter", "desired-state=running", "--format", "{{.Image}}"
    ).split()
    assert images == ["chorus-agent:next"] * 8
    assert samples.duplicates() == []


# -- 6. a worker node is lost ------------------------------------------------------------
def test_worker_node_lost_slots_come_back_elsewhere(day2: Mesh, timings: Timings) -> None:
    cluster = day2.cluster
    _, node, lost_slots = _busiest_worker(day2)
    peers = day2.peer_of_slot()
    lost = {peers[slot] for slot in lost_slots}
    with sampling(day2) as samples:
        cluster.script("kill-node", str(node_index(node)))
        back = wait_until(
            f"slots {lost_slots} to run elsewhere with their peer IDs, 8/8 heard",
            lambda: (cluster.running(AGENTS), day2.agents(), day2.coverage()),
            lambda v: (
                len(v[0]) == 8
                and node not in v[0].values()
                and day2.peer_of_slot(v[1]) == peers
                and v[2]["heard"] == 8
                and v[2]["connected"] == 8
            ),
            timeout=300,
            interval=1,
        )
        timings.mark(f"{node} powered off (slots {lost_slots}) -> 8/8 heard again")
    unreachable = samples.first("whoosh", lambda d: d["summary"]["unreachable"] > 0)
    cut = samples.first(
        "monitor", lambda c: bool(lost & {n["peer_id"] for n in c["not_connected"]})
    )
    missing = samples.missing_seen()
    named = sorted({round(t, 1) for p in lost for t in missing.get(p, [])})
    print(
        f"\nnode loss: WHOOSH listed the lost agents unreachable after {unreachable} s, the "
        f"monitor not connected after {cut} s and missing from {named[:1]} to {named[-1:]} s"
    )
    # A failure, never "left": the monitor kept expecting them all along.
    assert not set(samples.left_seen("whoosh")) & lost
    assert not set(samples.left_seen("monitor")) & lost
    assert all(cov["expected"] == 8 for _, cov in samples.monitor), [
        (t, c["expected"]) for t, c in samples.monitor if c["expected"] != 8
    ]
    assert samples.duplicates() == []
    assert all(back[0][slot] != node for slot in lost_slots)

    # The node comes back: Swarm stops what it ran; no identity runs twice.
    with sampling(day2) as samples:
        cluster.script("start-node", str(node_index(node)))
        wait_until(
            f"{node} Ready again",
            lambda: cluster.docker("node", "inspect", "-f", "{{.Status.State}}", node).strip(),
            "ready".__eq__,
            timeout=120,
        )
        wait_until(
            f"no agent task running on {node}",
            lambda: cluster.node_docker(
                node_index(node),
                "ps",
                "-q",
                "--filter",
                f"label=com.docker.swarm.service.name={AGENTS}",
            ).split(),
            lambda ids: ids == [],
            timeout=120,
        )
        day2.wait(8, timeout=120)
        timings.mark(f"{node} back in the Swarm, nothing of it runs twice, 8/8")
    assert samples.duplicates() == []


# -- 7. a monitor outside the overlay ----------------------------------------------------
@contextlib.contextmanager
def _outside_monitor(log: Path, key_file: Path | None) -> Iterator[subprocess.Popen[bytes]]:
    """The monitor as a process in the outside namespace: WHOOSH's published port tells it
    whom to expect; it may dial only the nodes' network (the agents' overlay addresses are
    not reachable from there, and the policy says so instead of trying). ``key_file``: the
    swarm.key it dials with (None: none, an open host)."""
    env = {
        **os.environ,
        "MONITOR_HOST": "127.0.0.1",
        "MONITOR_PORT": str(OUTSIDE_MONITOR_PORT),
        "MONITOR_P2P_PORT": "9000",
        "MONITOR_WHOOSH_URL": f"http://{SUBNET}.1:8080",
        "MONITOR_OVERLAY_CIDRS": f"{SUBNET}.0/24",
        "MONITOR_BOOTSTRAP_REFRESH_S": "3",
        "MONITOR_HEARD_WINDOW_S": f"{HEARD_WINDOW_S:g}",
        "MONITOR_BOOTSTRAP_CACHE_PATH": str(log.parent / "bootstrap.json"),
        "MONITOR_LOG_MESSAGES_TO_STDOUT": "false",
        "MONITOR_PNET_KEY_FILE": str(key_file or ""),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", f"{PREFIX}-outside", sys.executable, "-m", "hmmm_monitor"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


def _outside(cluster: Cluster) -> dict[str, Any]:
    """The outside monitor's coverage (expected, connected, heard...)."""
    return dict(cluster.get_json("127.0.0.1", OUTSIDE_MONITOR_PORT, "/api/v1/coverage", "outside"))


def _gateway_refusals(cluster: Cluster, gateway: str, reason: str) -> int:
    """Inbound connections the gateway's private network refused for ``reason`` lately,
    as the doctor sees them: WHOOSH reads every agent's health (its latest refusals, with
    the address that knocked) and names them in ``pnet_refused``. Only refusals from the
    outside host count."""
    doc = cluster.get_json(f"{SUBNET}.1", 8080, "/api/v1/diagnosis", "outside")
    for f in doc["findings"]:
        if f["id"] != "pnet_refused":
            continue
        for host in f["evidence"]["hosts"]:
            if host["name"] == gateway and f"{SUBNET}.250" in host["remotes"]:
                return int(host["refused"].get(f"inbound/{reason}", 0))
    return 0


def test_monitor_outside_the_overlay_hears_every_agent(
    day2: Mesh, timings: Timings, tmp_path: Path
) -> None:
    cluster = day2.cluster
    day2.wait(8, timeout=120)
    cluster.docker("service", "scale", "--detach", f"{GATEWAYS}=1")
    agents = day2.wait(8, timeout=240, gateways=1)
    [gateway] = [a for a in agents["agents"] if a["name"].startswith(f"{GATEWAYS}-")]
    gw_node = next(iter(cluster.running(GATEWAYS).values()))
    # WHOOSH lists the gateway at its overlay address and at its node's published port.
    published = f"/ip4/{node_ip(gw_node)}/tcp/9001/p2p/{gateway['peer_id']}"
    assert gateway["multiaddrs"][1:] == [published], gateway
    timings.mark(f"gateway agent on {gw_node}, listed by WHOOSH: 9/9")

    cluster.script("outside")
    outside = f"{SUBNET}.250"
    # The outside host reaches WHOOSH's published port, not an agent's overlay address and
    # not a node's Swarm ports.
    agents_seen = cluster.get_json(f"{SUBNET}.1", 8080, "/api/v1/agents", netns="outside")
    assert agents_seen["summary"]["healthy"] == 9
    overlay_ip = agents["agents"][0]["url"].split("//", 1)[1].split(":", 1)[0]
    with pytest.raises(OSError):
        cluster.get_json(overlay_ip, 8080, "/api/health", netns="outside")
    with pytest.raises(OSError):
        cluster.get_json(f"{SUBNET}.1", 2377, "/", netns="outside")

    # Without the mesh's key, or with the one retired by the rotation: the gateway refuses
    # the monitor before multistream (counted with the reason; the doctor names the
    # outside host's address), and it hears nobody.
    old_key = tmp_path / "old.key"
    old_key.write_text(day2.env["CHORUS_PNET_KEY_RETIRED"])
    for key_file, reason in ((None, "no_key"), (old_key, "wrong_key")):
        log = tmp_path / f"outside-monitor-{reason}.log"
        before = _gateway_refusals(cluster, gateway["name"], reason)
        with _outside_monitor(log, key_file) as proc:

            def refusals_and_view(why: str = reason) -> tuple[int, dict[str, Any]]:
                return _gateway_refusals(cluster, gateway["name"], why), _outside(cluster)

            refused = wait_until(
                f"the gateway to refuse the outside monitor ({reason})",
                refusals_and_view,
                lambda v, floor=before: v[0] > floor and v[1]["bootstrap"]["count"] == 9,
                timeout=120,
                interval=1,
            )
            assert proc.poll() is None, log.read_text()[-3000:]
        cov = refused[1]
        assert (cov["connected"], cov["heard"]) == (0, 0), cov
        timings.mark(f"outside monitor, {reason}: refused by the gateway, 0/9 heard")

    key = tmp_path / "swarm.key"
    key.write_text(day2.env["CHORUS_PNET_KEY"])
    with _outside_monitor(tmp_path / "outside-monitor.log", key) as proc:

        def coverage() -> dict[str, Any]:
            assert proc.poll() is None, (tmp_path / "outside-monitor.log").read_text()[-3000:]
            return _outside(cluster)

        cov = wait_until(
            f"the monitor at {outside} to hear 9/9 through the gateway",
            coverage,
            lambda c: c["expected"] == 9 and c["heard"] == 9 and not c["missing"],
            timeout=180,
            interval=1,
        )
        timings.mark("monitor outside the overlay, with the key: 9/9 heard")
    assert cov["bootstrap"]["source"] == "whoosh"
    # Connected directly: only the gateway (the one address it may dial); heard: everyone,
    # through it. The others are named not connected, with the honest reason.
    assert cov["connected"] == 1 and cov["heard_via_mesh"] == 8
    assert {n["reason"] for n in cov["not_connected"]} == {"no_dialable_multiaddr"}
    assert gateway["peer_id"] not in {n["peer_id"] for n in cov["not_connected"]}
    cluster.docker("service", "scale", "--detach", f"{GATEWAYS}=0")


# -- 8. removal ----------------------------------------------------------------------------
def _leftovers(cluster: Cluster) -> dict[str, list[str]]:
    label = f"label=com.docker.stack.namespace={STACK}"
    containers = []
    for i in range(1, NODES + 1):
        containers += cluster.node_docker(i, "ps", "-q", "--filter", label).split()
    return {
        "services": cluster.docker("service", "ls", "-q", "--filter", label).split(),
        "networks": cluster.docker("network", "ls", "-q", "--filter", label).split(),
        "containers": containers,
    }


def test_stack_removed_from_every_node(day2: Mesh, timings: Timings) -> None:
    cluster = day2.cluster

    def remove_stack() -> None:
        # `docker stack rm` removes the services at once, but refuses to remove the overlay
        # network while a task is still attached ("network ... is in use by task"): once
        # the tasks are gone, the same command removes what is left.
        try:
            cluster.docker("stack", "rm", STACK)
        except AssertionError as exc:
            if "in use by task" not in str(exc):
                raise

    def leftovers() -> dict[str, list[str]]:
        left = _leftovers(cluster)
        if left["networks"] and not left["services"] and not left["containers"]:
            remove_stack()
        return left

    remove_stack()
    left = wait_until(
        "the stack to be gone from every node",
        leftovers,
        lambda d: not any(d.values()),
        timeout=120,
        interval=1,
    )
    assert left == {"services": [], "networks": [], "containers": []}
    # The identity secret outlives the stack on purpose (the next deploy keeps the IDs).
    assert cluster.docker("secret", "ls", "-q", "--filter", f"name={SECRET}").split()
    timings.mark("stack removed from every node")
