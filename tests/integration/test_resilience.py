"""Edge cases of a real deployment, with real processes: an agent restarts, an agent
crashes, WHOOSH goes away and comes back, the agent mesh splits in two. Each time the
monitor must say what happened (who is missing, where its list came from, that the mesh is
partitioned) and get back to N/N by itself once the fault is gone.

One 6-agent mesh for the whole module (each test starts and ends at N/N). Agents 1-3 and
4-6 run with two different group IDs so the partition test can cut the links between the
halves with iptables: on loopback every dial leaves from 127.0.0.1, so the owner of the
socket is the only thing that tells which agent a packet comes from. That test needs root
and iptables (installed with apt-get when missing); under CHORUS_REQUIRE_ENGINE=1 (`make
test` sets it) a machine without them fails the test instead of skipping it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from meshlocal import LocalMesh, MeshLayout

from .firewall import output_chain, require_iptables

pytestmark = pytest.mark.integration

N = 6
GROUP_A = (1, 2, 3)
GROUP_B = (4, 5, 6)
GID_A, GID_B = 64_101, 64_102
CHAIN = "CHORUS_TEST_PARTITION"
# `make test` asks for every tier, root-level tools included: no silent skip then.
LAYOUT = MeshLayout(
    agents=N,
    agent_net="127.0.100",
    whoosh_ip="127.0.101.2",
    monitor_ip="127.0.101.3",
    broadcast_interval_s=2.0,
)


@pytest.fixture(scope="module")
def rmesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    mesh = LocalMesh(LAYOUT, run_dir=tmp_path_factory.mktemp("resilience"))
    mesh.build()
    if os.geteuid() == 0:
        for i in range(1, N + 1):
            mesh.service(_name(i)).gid = GID_A if i in GROUP_A else GID_B
    try:
        mesh.start()
        waited = mesh.wait_for(lambda: _full(mesh), timeout=120, what=f"coverage {N}/{N}")
        print(f"\nmesh up: monitor {N}/{N} connected+heard after {waited:.1f}s")
        yield mesh
    finally:
        mesh.stop()
        if request.session.testsfailed:
            print(f"run dir: {mesh.run_dir}\n{mesh.log_tail()}")


# -- readings -----------------------------------------------------------------------------
def _name(i: int) -> str:
    return f"agent-{i:02d}"


def _coverage(mesh: LocalMesh) -> dict[str, Any]:
    return mesh.get_json(f"{mesh.layout.monitor_url}/api/v1/coverage")


def _peers(mesh: LocalMesh) -> dict[str, dict[str, Any]]:
    body = mesh.get_json(f"{mesh.layout.monitor_url}/api/v1/peers")
    return {p["name"]: p for p in body["peers"]}


def _topology(mesh: LocalMesh) -> dict[str, Any]:
    return mesh.get_json(f"{mesh.layout.monitor_url}/api/v1/topology")


def _whoosh_agents(mesh: LocalMesh) -> dict[str, Any]:
    return mesh.get_json(f"{mesh.layout.whoosh_url}/api/v1/agents")


def _peer_id(mesh: LocalMesh, i: int) -> str:
    return str(mesh.get_json(f"{mesh.layout.agent_url(i)}/api/health")["peer_id"])


def _full(mesh: LocalMesh) -> bool:
    cov = _coverage(mesh)
    return (cov["expected"], cov["connected"], cov["heard"]) == (N, N, N) and not cov["missing"]


def _missing_names(mesh: LocalMesh) -> set[str]:
    return {m["name"] for m in _coverage(mesh)["missing"]}


def _whoosh_state(mesh: LocalMesh, i: int) -> str | None:
    url = mesh.layout.agent_url(i)
    for agent in _whoosh_agents(mesh)["agents"]:
        if agent["url"].rstrip("/") == url:
            return str(agent["state"])
    return None


def _heard_since(mesh: LocalMesh, name: str, since: float) -> bool:
    last = _peers(mesh)[name]["last_heard"]
    return last is not None and last > since


def _stop(mesh: LocalMesh, name: str, *, kill: bool = False) -> None:
    proc = mesh.service(name)
    assert proc.proc is not None and proc.alive(), f"{name} is not running"
    if kill:
        proc.proc.kill()
    else:
        proc.terminate()
    proc.wait_or_kill(15)
    assert not proc.alive()


# -- 1. agent restart ---------------------------------------------------------------------
def test_agent_restart_monitor_reconnects_and_hears_it_again(rmesh: LocalMesh) -> None:
    mesh = rmesh
    mesh.wait_for(lambda: _full(mesh), timeout=120, what=f"coverage {N}/{N} before the restart")
    name = _name(3)
    peer_id = _peer_id(mesh, 3)
    before = _peers(mesh)[name]
    assert before["connected"] and before["peer_id"] == peer_id

    _stop(mesh, name)  # SIGTERM: a graceful restart, e.g. a rolling update
    stopped = time.time()
    lost = mesh.wait_for(
        lambda: not _peers(mesh)[name]["connected"], timeout=60, what=f"monitor to see {name} go"
    )
    mesh.service(name).start()
    up = mesh.wait_for(
        lambda: _peers(mesh)[name]["connected"], timeout=120, what=f"monitor to reconnect {name}"
    )
    heard = mesh.wait_for(
        lambda: _heard_since(mesh, name, stopped), timeout=60, what=f"a new message from {name}"
    )
    full = mesh.wait_for(lambda: _full(mesh), timeout=60, what=f"coverage {N}/{N} again")
    print(
        f"\nrestart: loss seen in {lost:.1f}s; reconnected {up:.1f}s after start;"
        f" heard +{heard:.1f}s; {N}/{N} +{full:.1f}s"
    )
    after = _peers(mesh)[name]
    # Same identity (the key is persisted), one more reconnect counted, connected now.
    assert _peer_id(mesh, 3) == peer_id == after["peer_id"]
    assert after["connected"]
    assert after["reconnects"] >= before["reconnects"] + 1
    assert after["last_error"] and after["last_error"]["reason"]  # the loss left a cause


# -- 2. agent crash -----------------------------------------------------------------------
def test_agent_crash_is_named_missing_then_recovers(rmesh: LocalMesh) -> None:
    mesh = rmesh
    mesh.wait_for(lambda: _full(mesh), timeout=120, what=f"coverage {N}/{N} before the crash")
    name = _name(5)
    window = _coverage(mesh)["heard_window_s"]

    _stop(mesh, name, kill=True)  # SIGKILL: no goodbye, sockets closed by the kernel
    missing = mesh.wait_for(
        lambda: name in _missing_names(mesh),
        timeout=window + 30,
        what=f"coverage to name {name} missing",
    )
    cov = _coverage(mesh)
    # Only the crashed agent is missing; the monitor says it is also not connected.
    assert _missing_names(mesh) == {name}
    assert cov["heard"] == N - 1
    assert name in {p["name"] for p in cov["not_connected"]}
    unreachable = mesh.wait_for(
        lambda: _whoosh_state(mesh, 5) == "unreachable", timeout=60, what="WHOOSH: unreachable"
    )
    summary = _whoosh_agents(mesh)["summary"]
    assert (summary["expected"], summary["healthy"], summary["missing"]) == (N, N - 1, 1)
    # WHOOSH now lists only the healthy agents; once the monitor has that list, it must
    # still expect the crashed one and name it missing (not shrink to a silent 5/5).
    mesh.wait_for(
        lambda: _coverage(mesh)["bootstrap"]["count"] == N - 1,
        timeout=60,
        what="monitor to fetch WHOOSH's list without the crashed agent",
    )
    cov = _coverage(mesh)
    assert (cov["expected"], cov["heard"]) == (N, N - 1), cov
    assert _missing_names(mesh) == {name}
    assert _peers(mesh)[name]["in_bootstrap"] is False

    mesh.service(name).start()
    back = mesh.wait_for(lambda: _full(mesh), timeout=90, what=f"coverage {N}/{N} after restart")
    mesh.wait_for(lambda: _whoosh_state(mesh, 5) == "healthy", timeout=60, what="WHOOSH healthy")
    print(
        f"\ncrash: missing after {missing:.1f}s (heard window {window}s),"
        f" WHOOSH unreachable +{unreachable:.1f}s; back to {N}/{N} {back:.1f}s after restart"
    )


# -- 3. WHOOSH restart --------------------------------------------------------------------
def test_whoosh_down_monitor_uses_cache_and_keeps_hearing_everyone(rmesh: LocalMesh) -> None:
    mesh = rmesh
    # The monitor keeps expecting an agent that left WHOOSH's list for a while, so full
    # coverage alone does not mean its last (cached) list has all N: wait for both.
    mesh.wait_for(
        lambda: _full(mesh) and _coverage(mesh)["bootstrap"]["count"] == N,
        timeout=120,
        what=f"coverage {N}/{N} and a cached list of {N} before WHOOSH stops",
    )
    assert _coverage(mesh)["bootstrap"]["source"] == "whoosh"
    whoosh = mesh.service("whoosh")
    reconnects = {n: p["reconnects"] for n, p in _peers(mesh).items()}
    try:
        _stop(mesh, "whoosh")
        down = time.time()
        to_cache = mesh.wait_for(
            lambda: _coverage(mesh)["bootstrap"]["source"] == "cache",
            timeout=120,
            what="bootstrap source 'cache'",
        )
        # With WHOOSH gone, every agent is still heard anew, over the same connections.
        fresh = mesh.wait_for(
            lambda: all(_heard_since(mesh, _name(i), down) for i in range(1, N + 1)),
            timeout=60,
            what="a new message from every agent while WHOOSH is down",
        )
        cov = _coverage(mesh)
        assert (cov["expected"], cov["connected"], cov["heard"]) == (N, N, N), cov
        assert cov["bootstrap"]["count"] == N
        assert cov["bootstrap"]["error"]  # why the cache is used, not silent
        assert {n: p["reconnects"] for n, p in _peers(mesh).items()} == reconnects
    finally:
        if not whoosh.alive():
            whoosh.start()
    back = mesh.wait_for(
        lambda: _coverage(mesh)["bootstrap"]["source"] == "whoosh",
        timeout=120,
        what="bootstrap source back to 'whoosh'",
    )
    mesh.wait_for(lambda: _full(mesh), timeout=60, what=f"coverage {N}/{N} after WHOOSH is back")
    assert _whoosh_agents(mesh)["summary"]["healthy"] == N
    print(
        f"\nWHOOSH down: source 'cache' after {to_cache:.1f}s, all {N} heard again"
        f" +{fresh:.1f}s; 'whoosh' again {back:.1f}s after restart"
    )


# -- 4. network partition -----------------------------------------------------------------
def _reject(gid: int, ip: str) -> tuple[str, ...]:
    """Every TCP packet a process of group ``gid`` sends to ``ip`` is answered with a reset."""
    return (
        "-p", "tcp", "-m", "owner", "--gid-owner", str(gid),
        "-d", ip, "-j", "REJECT", "--reject-with", "tcp-reset",
    )  # fmt: skip


def _partition(a: tuple[int, ...], b: tuple[int, ...]) -> contextlib.AbstractContextManager[None]:
    """REJECT (tcp-reset) every TCP packet an agent of one side sends to the other side.

    Matching on the sending socket's group ID in OUTPUT is exact: dials and replies both
    come from 127.0.0.1 on loopback. Cutting one direction is enough: the side whose send
    is rejected resets at once, and the other side's next segment then hits a closed
    socket and is reset by the kernel. The monitor and WHOOSH (other group) are untouched.
    """
    rules = [
        _reject(gid, LAYOUT.agent_ip(i)) for gid, others in ((GID_A, b), (GID_B, a)) for i in others
    ]
    return output_chain(CHAIN, *rules)


def _split_as(mesh: LocalMesh, groups: list[set[str]]) -> bool:
    topo = _topology(mesh)
    comps = [set(c) for c in topo["components"]]
    return bool(topo["partitioned"]) == (len(groups) > 1) and sorted(comps, key=sorted) == sorted(
        groups, key=sorted
    )


def test_partition_is_detected_and_heals(rmesh: LocalMesh) -> None:
    require_iptables("partition", CHAIN, _reject(GID_A, "127.0.100.250"))
    mesh = rmesh
    mesh.wait_for(lambda: _full(mesh), timeout=120, what=f"coverage {N}/{N} before the split")
    ids = {i: _peer_id(mesh, i) for i in range(1, N + 1)}
    side_a = {ids[i] for i in GROUP_A}
    side_b = {ids[i] for i in GROUP_B}
    whole = [side_a | side_b]
    mesh.wait_for(lambda: _split_as(mesh, whole), timeout=120, what="one component before")

    with _partition(GROUP_A, GROUP_B):
        split = mesh.wait_for(
            lambda: _split_as(mesh, [side_a, side_b]),
            timeout=120,
            what="topology: partitioned into agents 1-3 and 4-6",
        )
        topo = _topology(mesh)
        assert topo["partitioned"] is True
        assert len(topo["components"]) == 2
        # No agent reports a neighbour across the cut.
        for edge in topo["edges"]:
            if "availability" in edge["kinds"]:
                pair = {edge["source"], edge["target"]}
                assert not (pair & side_a and pair & side_b), edge
        # The monitor still reaches both halves: it sees the split, not an outage.
        mesh.wait_for(lambda: _full(mesh), timeout=60, what=f"coverage {N}/{N} during the split")
        # The doctor's diagnosis names the split with both groups.
        diagnosis = mesh.get_json(f"{mesh.layout.monitor_url}/api/v1/diagnosis")
        (cut,) = [f for f in diagnosis["findings"] if f["id"] == "mesh_partitioned"]
        groups = [{m["peer_id"] for m in g} for g in cut["evidence"]["groups"]]
        assert cut["severity"] == "critical"
        assert sorted(groups, key=sorted) == sorted([side_a, side_b], key=sorted)
        for i in GROUP_A:  # the agents themselves see only their own side
            peers = set(mesh.get_json(f"{mesh.layout.agent_url(i)}/api/health")["peers"])
            assert not peers & side_b, (i, peers & side_b)

    healed = mesh.wait_for(
        lambda: _split_as(mesh, whole), timeout=120, what="topology: one component again"
    )
    mesh.wait_for(lambda: _full(mesh), timeout=60, what=f"coverage {N}/{N} after healing")
    print(f"\npartition: detected after {split:.1f}s; healed {healed:.1f}s after rules removed")


def test_all_processes_survived(rmesh: LocalMesh) -> None:
    assert [p.name for p in rmesh.processes if not p.alive()] == []
