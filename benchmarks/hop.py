"""The mesh's cost per hop (issue 20): an N-agent local mesh with ``make run``'s 10 s
broadcasts, one extra publisher attached to agent 1 (the monitor is not connected to it),
publishing at 10 and then 100 msg/s. Every message crosses every agent, so the agents' CPU
while publishing, minus what they burn idle over the same time, divided by messages x
agents, is what one agent pays per message per hop. The monitor's log gives delivery and
latency.

    python -m benchmarks.hop --agents 20 --rates 10,100 [--python OTHER]
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import mesh
from benchmarks.messages import summarize
from benchmarks.procs import Interpreter, cpu_seconds, spawned, wakeups
from benchmarks.profile import record
from benchmarks.profile import summarize as summarize_profile
from benchmarks.publisher import PublisherProbe
from meshcommon import topics
from meshcommon.waiting import wait_until
from meshlocal import LocalMesh

BROADCAST_S = 10.0  # make run's broadcasts
IDLE_S = 10.0
SECONDS = {10: 20.0, 100: 10.0}  # per rate: long enough for a few hundred messages
TAIL_S = 15.0  # what arrives later than this after the last send counts as lost


@dataclass
class HopRun:
    agents: int
    idle_agents_pct: float = float("nan")  # all agents together, % of one core
    idle_wakeups_s: float = float("nan")  # all agents together, per second
    mesh_degree: float = float("nan")  # mean GossipSub mesh size of the agents (coordination)
    by_rate: dict[int, dict[str, float]] = field(default_factory=dict)


def run_once(
    interp: Interpreter,
    agents: int,
    rates: Sequence[int] = (10, 100),
    within_s: float = 180,
    py_spy: str = "",
    agent_env: dict[str, str] | None = None,
) -> HopRun:
    """``py_spy``: also record a py-spy profile of agent 5 (a forwarder) under each load.
    ``agent_env``: more settings for every agent (e.g. ``AGENT_GOSSIP_DEGREE``)."""
    result = HopRun(agents)
    with mesh_with_publisher(interp, agents, agent_env or {}, within_s) as (local, pub):
        pids = [p.pid for p in local.processes if p.pid and p.name.startswith("agent")]
        result.mesh_degree = mesh_degree(local, agents)
        idle, idle_wakeups = _cpu_over(pids, IDLE_S)
        result.idle_agents_pct = idle * 100
        result.idle_wakeups_s = idle_wakeups
        for rate in rates:
            profile = None
            if py_spy:
                pid = local.service("agent-05").pid
                assert pid is not None
                profile = (py_spy, pid, Path(tempfile.mkdtemp(prefix="profile-hop-")))
            result.by_rate[rate] = _load(local, pub, pids, rate, (idle, idle_wakeups), profile)
    return result


@contextlib.contextmanager
def mesh_with_publisher(
    interp: Interpreter,
    agents: int,
    agent_env: dict[str, str],
    within_s: float,
) -> Iterator[tuple[LocalMesh, PublisherProbe]]:
    """An ``agents``-agent local mesh with ``make run``'s broadcasts (``agent_env``: more
    settings for every agent) that the monitor hears in full, and a publisher probe in
    agent 1's GossipSub mesh (the monitor is not connected to it); all stopped afterwards,
    the run directory removed. Shared by the hop and the mesh-loss benchmarks."""
    local = LocalMesh(mesh.layout(agents, BROADCAST_S), python=interp.python)
    if agent_env:
        local.extra_env = {f"agent-{i:02d}": dict(agent_env) for i in range(1, agents + 1)}
    cov_url = f"{local.layout.monitor_url}/api/v1/coverage"
    try:
        local.start()
        wait_until(
            lambda: local.get_json(cov_url),
            lambda c: c["expected"] == agents and c["heard"] == agents,
            within_s=within_s,
            interval=0.5,
            what=f"{agents}/{agents} heard",
        )
        first = local.get_json(f"{local.layout.agent_url(1)}/api/health")
        with spawned(mesh.publisher_argv(local), pipes=True) as proc:
            pub = PublisherProbe(proc)
            if not pub.ask(cmd="connect", peer_id=first["peer_id"], addr=first["multiaddrs"][0])[
                "connected"
            ]:
                raise RuntimeError("publisher could not dial agent 1")
            if not pub.ask(cmd="wait_mesh", peer_id=first["peer_id"], within_s=30)["in_mesh"]:
                raise RuntimeError("agent 1 never joined the publisher's mesh")
            time.sleep(2)  # let the mesh settle after the publisher's arrival
            yield local, pub
    finally:
        local.stop()
        shutil.rmtree(local.run_dir, ignore_errors=True)


def mesh_degree(local: LocalMesh, agents: int) -> float:
    """The agents' mean GossipSub mesh size on the coordination topic: how many peers
    each forwarded message goes to (less its forwarder)."""
    sizes = []
    for i in range(1, agents + 1):
        with contextlib.suppress(Exception):
            view = local.get_json(f"{local.layout.agent_url(i)}/api/v1/mesh")
            sizes.append(len(view["topics"][topics.COORDINATION]["mesh"]))
    return statistics.fmean(sizes) if sizes else float("nan")


def _cpu_over(pids: list[int], seconds: float) -> tuple[float, float]:
    """The agents' CPU seconds per second and wake-ups per second over the next
    ``seconds``."""
    c0, w0, t0 = cpu_seconds(pids), wakeups(pids), time.monotonic()
    time.sleep(seconds)
    c1, w1, dt = cpu_seconds(pids), wakeups(pids), time.monotonic() - t0
    cpu = sum(c1[p] - c0[p] for p in c0 if p in c1) / dt
    return cpu, sum(w1[p] - w0[p] for p in w0 if p in w1) / dt


def _load(
    local: LocalMesh,
    pub: PublisherProbe,
    pids: list[int],
    rate: int,
    idle_rates: tuple[float, float],
    profile: tuple[str, int, Path] | None = None,
) -> dict[str, float]:
    seconds = SECONDS.get(rate, 10.0)
    tag = f"hop{rate}"
    sent_goal = int(rate * seconds)
    log = local.run_dir / "messages.jsonl"
    idle, idle_wakeups = idle_rates
    c0, w0, t0 = cpu_seconds(pids), wakeups(pids), time.monotonic()
    pub.start_publishing(rate, seconds, tag)
    if profile is not None:
        py_spy, pid, out_dir = profile
        time.sleep(1)
        raw = out_dir / f"hop-{len(pids)}-{rate}.txt"
        record(py_spy, pid, seconds - 2, raw)
        print(f"profile of one forwarding agent at {rate}/s: {raw}\n{summarize_profile(raw)}")
    sent = int(pub.finish(within_s=seconds + 120).get("sent", sent_goal))
    with contextlib.suppress(TimeoutError):  # what never arrives is counted lost below
        wait_until(
            lambda: summarize(log, [tag], sent).received,
            lambda n: n >= sent,
            within_s=TAIL_S,
            interval=0.2,
            what=f"the {rate}/s load's tail",
        )
    c1, w1, dt = cpu_seconds(pids), wakeups(pids), time.monotonic() - t0
    busy = sum(c1[p] - c0[p] for p in c0 if p in c1) - idle * dt
    woken = sum(w1[p] - w0[p] for p in w0 if p in w1) - idle_wakeups * dt
    d = summarize(log, [tag], sent)
    return {
        "us_per_msg_hop": busy / max(1, sent * len(pids)) * 1e6,
        # Voluntary context switches per message per agent, idle ones taken out: how
        # often a hop puts an agent's thread to sleep and wakes it again.
        "wakeups_per_msg_hop": woken / max(1, sent * len(pids)),
        "agents_pct": 100 * (busy / dt + idle),
        "delivered_pct": 100.0 * d.received / max(1, sent),
        "p50_ms": d.p50_ms,
        "p99_ms": d.p99_ms,
    }


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--agents", type=int, default=20)
    p.add_argument("--rates", default="10,100")
    p.add_argument("--python", default=None, help="interpreter whose checkout runs")
    p.add_argument("--py-spy", default="", help="profile agent 5 under each load")
    p.add_argument("--env", action="append", default=[], help="AGENT_X=V for every agent")
    a = p.parse_args()
    run = run_once(
        Interpreter(a.python) if a.python else Interpreter(),
        a.agents,
        [int(r) for r in a.rates.split(",")],
        py_spy=a.py_spy,
        agent_env=dict(e.split("=", 1) for e in a.env),
    )
    print(
        f"{run.agents} agents, idle {run.idle_agents_pct:.0f} % of a core and "
        f"{run.idle_wakeups_s:.0f} wake-ups/s (all agents), mean mesh degree "
        f"{run.mesh_degree:.1f}"
    )
    for rate, figures in run.by_rate.items():
        print(f"  {rate}/s: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()))
