"""What the mesh degree buys (issue 20): an N-agent local mesh (``make run``'s 10 s
broadcasts, ``AGENT_GOSSIP_DEGREE`` = D) with one extra publisher attached to agent 1 at
10 msg/s; a few seconds in, a fifth of the agents are lost at once, first agent 1's own
mesh peers (the first hop, the hardest place to lose them), then by index:

- ``kill``: SIGKILL; the kernel closes their connections, the survivors see them go.
- ``stop``: SIGSTOP; the connections stay open and swallow what is sent to them (a host
  that vanished without a RST, a link that dropped), so GossipSub keeps them in its mesh.

Every surviving agent counts the bench messages it received (its
``chorus_agent_messages_received_total`` for type ``bench``): delivery is the worst and the
mean survivor's share of what was sent, and the monitor's log gives its own share and p99.
Mesh repair is the time from the loss until every survivor again has at least D_lo live
peers in its mesh (``/api/v1/mesh``; never, with ``stop``, for a mesh that keeps its
frozen peers); ``lowest_live_mesh`` is the smallest live mesh a survivor had meanwhile
(at or above D_lo: nothing needed repair).

    python -m benchmarks.mesh_loss --agents 20 --degree 6 --mode kill [--python OTHER]
"""

from __future__ import annotations

import contextlib
import re
import signal
import statistics
import time
from dataclasses import dataclass, field

import httpx

from benchmarks import hop
from benchmarks.messages import summarize
from benchmarks.procs import Interpreter
from meshcommon import topics
from meshcommon.waiting import wait_until
from meshlocal import LocalMesh

RATE, SECONDS, LOSS_AT_S = 10, 40.0, 8.0
LOST_SHARE = 0.2
TAIL_S = 15.0
REPAIR_WITHIN_S = 25.0
_RECEIVED = re.compile(r'^chorus_agent_messages_received_total\{[^}]*type="bench"[^}]*\} (\S+)$')


@dataclass
class LossRun:
    agents: int
    degree: int
    mode: str
    lost: list[int] = field(default_factory=list)  # agent indexes
    figures: dict[str, float] = field(default_factory=dict)


def run_once(
    interp: Interpreter, agents: int, degree: int, mode: str = "kill", within_s: float = 180
) -> LossRun:
    result = LossRun(agents, degree, mode)
    env = {"AGENT_GOSSIP_DEGREE": str(degree)}
    stopped: list[int] = []
    with hop.mesh_with_publisher(interp, agents, env, within_s) as (local, pub):
        try:
            ids = {
                i: local.get_json(f"{local.layout.agent_url(i)}/api/health")["peer_id"]
                for i in range(1, agents + 1)
            }
            before = {i: _bench_received(local, i) for i in ids}
            lost = _choose_lost(local, ids, agents)
            result.lost = lost
            pub.start_publishing(RATE, SECONDS, "loss")
            time.sleep(LOSS_AT_S)
            lost_at = time.monotonic()
            for i in lost:
                svc = local.service(f"agent-{i:02d}")
                assert svc.proc is not None
                svc.proc.send_signal(signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
                stopped.append(i)
            survivors = [i for i in ids if i not in lost]
            dead_ids = {ids[i] for i in lost}
            d_lo = max(1, degree * 2 // 3)
            repair_s = float("nan")
            lowest: list[int] = []  # each poll's smallest live mesh among the survivors

            def smallest_mesh() -> int:
                lowest.append(min(_live_mesh(local, i, dead_ids) for i in survivors))
                return lowest[-1]

            with contextlib.suppress(TimeoutError):
                wait_until(
                    smallest_mesh,
                    lambda n: n >= d_lo,
                    within_s=REPAIR_WITHIN_S,
                    interval=0.25,
                    what="mesh repaired",
                )
                repair_s = time.monotonic() - lost_at
            sent = int(pub.finish(within_s=SECONDS + 120).get("sent", RATE * SECONDS))
            log = local.run_dir / "messages.jsonl"
            with contextlib.suppress(TimeoutError):  # what never arrives is counted lost
                wait_until(
                    lambda: min(_bench_received(local, i) - before[i] for i in survivors),
                    lambda n: n >= sent,
                    within_s=TAIL_S,
                    interval=0.5,
                    what="every survivor's tail",
                )
            shares = [100 * (_bench_received(local, i) - before[i]) / sent for i in survivors]
            d = summarize(log, ["loss"], sent)
            degrees = [_live_mesh(local, i, dead_ids) for i in survivors]
            result.figures = {
                "worst_survivor_pct": min(shares),
                "mean_survivor_pct": statistics.fmean(shares),
                "monitor_pct": 100.0 * d.received / max(1, sent),
                "monitor_p99_ms": d.p99_ms,
                "repair_s": repair_s,
                "lowest_live_mesh": float(min(lowest, default=-1)),
                "min_live_mesh_at_end": float(min(degrees)),
            }
        finally:
            for i in stopped:  # a stopped process cannot act on SIGTERM
                svc = local.service(f"agent-{i:02d}")
                if svc.proc is not None and svc.proc.poll() is None:
                    svc.proc.send_signal(signal.SIGCONT)
    return result


def _choose_lost(local: LocalMesh, ids: dict[int, str], agents: int) -> list[int]:
    """A fifth of the agents (never agent 1): agent 1's mesh peers first, then by index."""
    count = max(1, round(agents * LOST_SHARE))
    by_id = {p: i for i, p in ids.items()}
    view = local.get_json(f"{local.layout.agent_url(1)}/api/v1/mesh")
    first_hop = [by_id[p] for p in view["topics"][topics.COORDINATION]["mesh"] if p in by_id]
    rest = [i for i in range(2, agents + 1) if i not in first_hop]
    return sorted((first_hop + rest)[:count])


def _bench_received(local: LocalMesh, index: int) -> int:
    text = httpx.get(f"{local.layout.agent_url(index)}/metrics", timeout=2.0).text
    total = 0.0
    for line in text.splitlines():
        m = _RECEIVED.match(line)
        if m:
            total += float(m.group(1))
    return int(total)


def _live_mesh(local: LocalMesh, index: int, dead: set[str]) -> int:
    view = local.get_json(f"{local.layout.agent_url(index)}/api/v1/mesh")
    return sum(1 for p in view["topics"][topics.COORDINATION]["mesh"] if p not in dead)


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--agents", type=int, default=20)
    p.add_argument("--degree", type=int, default=6)
    p.add_argument("--mode", choices=("kill", "stop"), default="kill")
    p.add_argument("--python", default=None, help="interpreter whose checkout runs")
    a = p.parse_args()
    run = run_once(Interpreter(a.python) if a.python else Interpreter(), a.agents, a.degree, a.mode)
    print(
        f"{run.agents} agents, D={run.degree}, {run.mode} agents {run.lost}: "
        + ", ".join(f"{k} {v:.1f}" for k, v in run.figures.items())
    )
