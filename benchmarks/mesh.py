"""The local mesh (``python -m meshlocal``'s processes): how fast N agents are heard, what
an idle mesh costs, and how gossip from one agent reaches the monitor under load."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import time
from dataclasses import dataclass, field

from pydantic_settings import BaseSettings

from benchmarks.messages import summarize
from benchmarks.procs import TOOLS, Interpreter, cpu_percent_over, rss_mib, spawned
from benchmarks.publisher import PublisherProbe
from chorus_agent.settings import Settings as AgentSettings
from hmmm_monitor.settings import Settings as MonitorSettings
from meshcommon.waiting import wait_until
from meshlocal import LocalMesh, MeshLayout
from whoosh.settings import Settings as WhooshSettings

IDLE_WINDOW_S = 30.0
# Idle means after the start-up work: every agent's first identify, pings and peering
# rounds and the DHT's fast walks (2, 4, 8 ... s apart while they find someone new) run in
# the first minute or so after 20/20 heard; measured from that moment, a 20-agent mesh's
# agent read 1.85 % of a core, 90 s later 1.27 % (same run, machine loaded).
IDLE_SETTLE_S = 90.0
LOAD_RATE, LOAD_SECONDS = 10.0, 30.0


@dataclass
class MeshRun:
    agents: int
    heard_after_s: float = float("nan")
    idle_total_pct: float = float("nan")  # all processes, % of one core
    idle_agent_pct: float = float("nan")  # median agent
    agent_rss_mib: float = float("nan")  # median agent
    load: dict[str, float] = field(default_factory=dict)


def layout(agents: int, broadcast_s: float, *, stack_periods: bool = False) -> MeshLayout:
    """The benchmark mesh. ``make run``'s launcher polls fast so that a mesh forms quickly
    (WHOOSH every 2 s, bootstrap lists every 2-3 s, and the monitor pings at its refresh);
    ``stack_periods`` gives WHOOSH its default poll period instead, for rows that quote the
    stack's defaults (the bootstrap refreshes are in ``stack_env``)."""
    return MeshLayout(
        agents=agents,
        agent_net="127.0.91",
        whoosh_ip="127.0.92.2",
        monitor_ip="127.0.92.3",
        broadcast_interval_s=broadcast_s,
        **({"whoosh_poll_s": _default(WhooshSettings, "poll_interval_s")} if stack_periods else {}),
    )


def stack_env(agents: int) -> dict[str, dict[str, str]]:
    """The services' own default refresh periods (stack.yml keeps them), over the launcher's
    fast ones: per process name, for ``LocalMesh(extra_env=...)``."""
    agent = {"AGENT_BOOTSTRAP_REFRESH_S": str(_default(AgentSettings, "bootstrap_refresh_s"))}
    return {
        **{f"agent-{i:02d}": agent for i in range(1, agents + 1)},
        "hmmm-monitor": {
            "MONITOR_BOOTSTRAP_REFRESH_S": str(_default(MonitorSettings, "bootstrap_refresh_s"))
        },
    }


def _default(settings: type[BaseSettings], field: str) -> float:
    return float(settings.model_fields[field].default)


def run_once(
    interp: Interpreter,
    agents: int,
    *,
    broadcast_s: float = 30.0,
    idle: bool = True,
    load: bool = False,
    within_s: float = 120.0,
    stack_periods: bool = False,
) -> MeshRun:
    result = MeshRun(agents)
    mesh = LocalMesh(
        layout(agents, broadcast_s, stack_periods=stack_periods),
        python=interp.python,
        extra_env=stack_env(agents) if stack_periods else {},
    )
    cov_url = f"{mesh.layout.monitor_url}/api/v1/coverage"
    started = time.monotonic()
    try:
        mesh.start()
        try:
            _, _ = wait_until(
                lambda: mesh.get_json(cov_url),
                lambda c: c["expected"] == agents and c["heard"] == agents,
                within_s=within_s,
                interval=0.2,
                what=f"{agents}/{agents} heard",
            )
            result.heard_after_s = time.monotonic() - started
        except TimeoutError:
            return result  # never heard: the other figures would mean little
        if idle:
            _measure_idle(mesh, result)
        if load:
            result.load = _measure_load(interp, mesh)
        return result
    finally:
        mesh.stop()
        shutil.rmtree(mesh.run_dir, ignore_errors=True)


def _measure_idle(mesh: LocalMesh, result: MeshRun) -> None:
    # A settling period, not a wait for a condition: the start-up work ends on its own
    # schedule and the figure is meant to exclude it.
    time.sleep(IDLE_SETTLE_S)
    pids = {p.pid: p.name for p in mesh.processes if p.pid}
    cpu = cpu_percent_over(list(pids), IDLE_WINDOW_S)
    agent_cpu = [v for pid, v in cpu.items() if pids[pid].startswith("agent")]
    result.idle_total_pct = sum(cpu.values())
    result.idle_agent_pct = statistics.median(agent_cpu)
    result.agent_rss_mib = statistics.median(
        rss_mib(pid) for pid, name in pids.items() if name.startswith("agent")
    )


def _measure_load(interp: Interpreter, mesh: LocalMesh) -> dict[str, float]:
    """A publisher joins through agent 1 (the monitor is not connected to it) and sends
    ``LOAD_RATE`` messages a second; every one should reach the monitor, quickly."""
    first = mesh.get_json(f"{mesh.layout.agent_url(1)}/api/health")
    with spawned(publisher_argv(mesh), pipes=True) as proc:
        pub = PublisherProbe(proc)
        addr = first["multiaddrs"][0]
        if not pub.ask(cmd="connect", peer_id=first["peer_id"], addr=addr)["connected"]:
            raise RuntimeError("publisher could not dial agent 1")
        pub.ask(cmd="wait_mesh", peer_id=first["peer_id"], within_s=30)
        pub.ask(cmd="publish", rate=LOAD_RATE, seconds=LOAD_SECONDS, tag="load", within_s=120)
        sent = int(LOAD_RATE * LOAD_SECONDS)
        log = mesh.run_dir / "messages.jsonl"
        with contextlib.suppress(TimeoutError):  # what never arrives is counted lost below
            wait_until(
                lambda: summarize(log, ["load"], sent).received,
                lambda n: n >= sent,
                within_s=10,
                what="the load's tail",
            )
        d = summarize(log, ["load"], sent)
    return {
        "delivered_pct": 100.0 * d.received / sent,
        "p50_ms": d.p50_ms,
        "p99_ms": d.p99_ms,
    }


def publisher_argv(mesh: LocalMesh) -> list[str]:
    """The publisher probe, holding the mesh's swarm.key when the mesh is closed."""
    key = ["--pnet-key-file", str(mesh.swarm_key_path)] if mesh.swarm_key_path.exists() else []
    return TOOLS.probe("publisher", "--host", "127.0.97.1", *key)
