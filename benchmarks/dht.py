"""The Kademlia DHT (issue 19): how fast 50 agents are heard with no WHOOSH at all and one
bootstrap address each, which of the DHT and the gossip field names peers first, and what
the DHT costs an idle agent (on vs off, same mesh shape, same sitting)."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.procs import Interpreter, cpu_percent_over, rss_mib
from meshcommon.waiting import wait_until
from meshlocal import LocalMesh, MeshLayout

IDLE_WINDOW_S = 60.0  # 0.1 % of a core is 60 ms of CPU in it: a few clock ticks per agent
# After everyone is heard the DHT still walks quickly until its routing table stops
# growing (2 s after a walk that found someone new, then 4, 8, 16... up to
# AGENT_DHT_REFRESH_S, 600 s): idle means after the fast walks. 30 s of settling measured
# +0.17 % of a core (walks at 16 and 32 s in the window), 120 s +0.05 %.
DHT_SETTLE_S = 120.0


@dataclass
class DhtRun:
    agents: int
    heard_after_s: float = float("nan")
    first_by: dict[str, float] = field(default_factory=dict)  # source -> peers named first
    idle_agent_pct: float = float("nan")  # median agent, % of one core
    agent_rss_mib: float = float("nan")  # median agent
    agent_connections: float = float("nan")  # median agent
    walks_per_agent: float = float("nan")  # DHT walks per agent in the idle window


def _layout(agents: int) -> MeshLayout:
    return MeshLayout(
        agents=agents,
        agent_net="127.0.93",
        whoosh_ip="127.0.94.2",
        monitor_ip="127.0.94.3",
        broadcast_interval_s=30.0,
    )


def without_whoosh(interp: Interpreter, agents: int, *, within_s: float = 180.0) -> DhtRun:
    """WHOOSH never started; agent 1 starts first, then every other agent and the monitor
    with agent 1's multiaddr as their only bootstrap address. The clock runs from agent
    1's launch to the monitor expecting and hearing every agent."""
    result = DhtRun(agents)
    layout = _layout(agents)
    mesh = LocalMesh(layout, python=interp.python)
    no_whoosh = {"AGENT_WHOOSH_URL": ""}
    cov_url = f"{layout.monitor_url}/api/v1/coverage"
    try:
        mesh.build()
        monitor = mesh.service("hmmm-monitor")
        first = mesh.agent_process(1, **no_whoosh)
        mesh.processes = [first]
        started = time.monotonic()
        first.start()
        health, _ = wait_until(
            lambda: mesh.get_json(f"{first.url}/api/health"), within_s=60, what="agent 1 up"
        )
        seed = health["multiaddrs"][0]
        for i in range(2, agents + 1):
            proc = mesh.agent_process(i, AGENT_BOOTSTRAP_PEERS=seed, **no_whoosh)
            proc.start()
            mesh.processes.append(proc)
        monitor.env |= {"MONITOR_WHOOSH_URL": "", "MONITOR_BOOTSTRAP_PEERS": seed}
        monitor.start()
        mesh.processes.append(monitor)
        if not _all_heard(mesh, cov_url, agents, within_s):
            return result
        result.heard_after_s = time.monotonic() - started
        _measure_idle(mesh, result, settle_s=DHT_SETTLE_S)
        result.first_by = _discovered_first(layout)
        return result
    finally:
        mesh.stop()
        shutil.rmtree(mesh.run_dir, ignore_errors=True)


def idle_cost(interp: Interpreter, agents: int, *, dht: bool, within_s: float = 120.0) -> DhtRun:
    """The usual mesh (WHOOSH, every agent in its list), the DHT on or off everywhere:
    an idle agent's CPU, RSS and connections once the DHT has settled."""
    result = DhtRun(agents)
    layout = _layout(agents)
    flag = "true" if dht else "false"
    env = {f"agent-{i:02d}": {"AGENT_DHT": flag} for i in range(1, agents + 1)}
    env["hmmm-monitor"] = {"MONITOR_DHT": flag}
    mesh = LocalMesh(layout, python=interp.python, extra_env=env)
    cov_url = f"{layout.monitor_url}/api/v1/coverage"
    started = time.monotonic()
    try:
        mesh.start()
        if not _all_heard(mesh, cov_url, agents, within_s):
            return result
        result.heard_after_s = time.monotonic() - started
        _measure_idle(mesh, result, settle_s=DHT_SETTLE_S)
        return result
    finally:
        mesh.stop()
        shutil.rmtree(mesh.run_dir, ignore_errors=True)


def _all_heard(mesh: LocalMesh, cov_url: str, agents: int, within_s: float) -> bool:
    """Whether the monitor expects and hears every agent within ``within_s``."""
    try:
        wait_until(
            lambda: mesh.get_json(cov_url),
            lambda c: c["expected"] == agents and c["heard"] == agents,
            within_s=within_s,
            interval=0.2,
            what=f"{agents}/{agents} heard",
        )
    except TimeoutError:
        return False
    return True


def _measure_idle(mesh: LocalMesh, result: DhtRun, *, settle_s: float) -> None:
    # A measurement's settling period, not a wait for a condition: the DHT's fast walks
    # end on their own schedule and the figure is meant to exclude them.
    time.sleep(settle_s)
    agents = {p.pid: p for p in mesh.processes if p.pid and p.name.startswith("agent")}
    walks_before = _walks(agents.values())
    cpu = cpu_percent_over(list(agents), IDLE_WINDOW_S)
    result.walks_per_agent = (_walks(agents.values()) - walks_before) / len(agents)
    result.idle_agent_pct = statistics.median(cpu.values())
    result.agent_rss_mib = statistics.median(rss_mib(pid) for pid in agents)
    links = []
    for p in agents.values():
        with contextlib.suppress(httpx.HTTPError, ValueError):
            links.append(int(mesh.get_json(f"{p.url}/api/health")["connected_peers"]))
    result.agent_connections = statistics.median(links) if links else float("nan")


def _walks(agents: Iterable[Any]) -> float:
    """DHT walks (lookups) the agents made so far, summed (0 with the DHT off)."""
    total = 0.0
    for p in agents:
        with contextlib.suppress(httpx.HTTPError):
            for line in httpx.get(f"{p.url}/metrics", timeout=5).text.splitlines():
                if line.startswith("chorus_agent_dht_lookups_total "):
                    total += float(line.split()[1])
    return total


def _discovered_first(layout: MeshLayout) -> dict[str, float]:
    """Summed over the agents: peers new to an agent's book, by the source that named them
    first (``chorus_agent_peers_discovered_total``), the DHT and gossip racing."""
    totals: dict[str, float] = {}
    name = "chorus_agent_peers_discovered_total{"
    for i in range(1, layout.agents + 1):
        with contextlib.suppress(httpx.HTTPError):
            text = httpx.get(f"{layout.agent_url(i)}/metrics", timeout=5).text
            for line in text.splitlines():
                if line.startswith(name):
                    source = line.split('source="', 1)[1].split('"', 1)[0]
                    totals[source] = totals.get(source, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals
