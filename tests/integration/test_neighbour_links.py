"""A slow agent, seen by the agents around it: agent-03 is throttled (stopped 1.5 s, let run
0.1 s, over and over: a starved or paused host), so every ping its neighbours send it
waits. The agents' own pings, in their neighbours reports, reach the monitor's diagnosis:
``link_degraded`` names agent-01 <-> agent-03 and agent-02 <-> agent-03, each with the
RTT each end measured, agent-03 as the end common to all of them, and not agent-01 <->
agent-02; the doctor exits 1. Once agent-03 runs freely again, the finding goes.

Real processes: 3 agents, WHOOSH and the monitor on 127.0.163/164.x. The throttle is
SIGSTOP/SIGCONT to agent-03's own PID (a process this test started), always resumed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from meshlocal import LocalMesh, MeshLayout

from .doctor_cli import doctor
from .test_doctor import dashboard_dom

pytestmark = pytest.mark.integration

LAYOUT = MeshLayout(
    agents=3,
    agent_net="127.0.163",
    whoosh_ip="127.0.164.2",
    monitor_ip="127.0.164.3",
    broadcast_interval_s=2.0,
)
PING_INTERVAL_S = 2.0  # agents ping their neighbours this often (AGENT_PING_INTERVAL_S)
SLOW_RTT_MS = 150


@pytest.fixture(scope="module")
def lmesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    extra_env: dict[str, dict[str, str]] = {
        f"agent-{i:02d}": {"AGENT_PING_INTERVAL_S": str(PING_INTERVAL_S)}
        for i in range(1, LAYOUT.agents + 1)
    }
    extra_env |= {
        "hmmm-monitor": {
            # A throttled agent's broadcasts come late: keep its reports fresh meanwhile.
            "MONITOR_HEARD_WINDOW_S": "30",
            "MONITOR_LINK_SLOW_RTT_MS": str(SLOW_RTT_MS),
        }
    }
    mesh = LocalMesh(LAYOUT, run_dir=tmp_path_factory.mktemp("links"), extra_env=extra_env)
    n = LAYOUT.agents

    def covered() -> bool:
        cov = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/coverage")
        return (cov["expected"], cov["heard"]) == (n, n)

    try:
        mesh.start()
        mesh.wait_for(covered, timeout=120, what=f"coverage {n}/{n}")
        yield mesh
    finally:
        mesh.stop()
        if request.session.testsfailed:
            print(mesh.log_tail(40))


class Throttle:
    """Stops and resumes one process of ours until closed; it is left running."""

    def __init__(self, pid: int, stopped_s: float, running_s: float) -> None:
        self.pid, self.stopped_s, self.running_s = pid, stopped_s, running_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._done.is_set():
                os.kill(self.pid, signal.SIGSTOP)
                self._done.wait(self.stopped_s)
                os.kill(self.pid, signal.SIGCONT)
                self._done.wait(self.running_s)
        finally:
            os.kill(self.pid, signal.SIGCONT)

    def close(self) -> None:
        self._done.set()
        self._thread.join(10)


def _ids(mesh: LocalMesh) -> dict[str, str]:
    return {
        mesh.get_json(f"{LAYOUT.agent_url(i)}/api/health")["peer_id"]: f"agent-{i:02d}"
        for i in (1, 2, 3)
    }


def _degraded(mesh: LocalMesh) -> dict[str, Any] | None:
    doc = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/diagnosis")
    return next((f for f in doc["findings"] if f["id"] == "link_degraded"), None)


def test_a_throttled_agent_is_named_at_the_end_of_its_slow_links(lmesh: LocalMesh) -> None:
    mesh = lmesh
    names = _ids(mesh)

    def full_mesh() -> bool:
        peers = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/peers")["peers"]
        reported = {
            (names[p["peer_id"]], names.get(n["peer_id"]))
            for p in peers
            for n in p["neighbours"]
            if n["rtt_ms"] is not None
        }
        return len({pair for pair in reported if pair[1]}) == 6

    mesh.wait_for(full_mesh, timeout=60, interval=1, what="every agent's pings to the other two")
    assert _degraded(mesh) is None  # a healthy mesh has no slow link
    pid = mesh.service("agent-03").pid
    assert pid is not None
    throttle = Throttle(pid, stopped_s=1.5, running_s=0.1)
    started = time.monotonic()
    try:
        seen: dict[str, Any] = {}

        def named() -> bool:
            found = _degraded(mesh)
            if found is None:
                return False
            seen.clear()
            seen.update(found)
            links = found["evidence"]["links"]
            pairs = {tuple(sorted(e["name"] for e in x["ends"])) for x in links}
            return pairs == {("agent-01", "agent-03"), ("agent-02", "agent-03")}

        waited = mesh.wait_for(named, timeout=90, interval=1, what="the slow links named")
        code, out, _ = doctor("--monitor", LAYOUT.monitor_url)
        assert code == 1 and "link_degraded" in out, out
        dom = dashboard_dom(f"{LAYOUT.monitor_url}/")  # the monitor's own dashboard
        assert 'class="finding warning"' in dom and "are slow or lossy" in dom
    finally:
        throttle.close()
    assert seen["severity"] == "warning"
    assert seen["evidence"]["common_end"]["name"] == "agent-03"
    assert "agent-03 is at the end of every one" in seen["title"]
    for link in seen["evidence"]["links"]:
        assert link["quality"] in ("slow", "lossy") and link["rtt_ms"] >= SLOW_RTT_MS
        # Measured by the agents themselves (agent-03's own report may be late).
        assert set(link["as_reported_by"]) & {"agent-01", "agent-02"}
    resumed = time.monotonic()

    def healed() -> bool:
        return _degraded(mesh) is None

    mesh.wait_for(healed, timeout=120, interval=2, what="the slow links gone")
    print(
        f"\nslow links named {waited:.1f}s after the throttle began "
        f"({resumed - started:.1f}s throttled); gone {time.monotonic() - resumed:.1f}s "
        "after it ended"
    )
