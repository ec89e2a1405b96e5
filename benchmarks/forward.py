"""What one forwarded message costs an agent: publisher probe -> agent -> monitor, the
monitor dialling only the agent, so every message it logs was received, validated and
forwarded by the agent. The agent's CPU time over the messages the monitor got."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from benchmarks.messages import summarize
from benchmarks.procs import TOOLS, Interpreter, cpu_seconds, spawned, wait_http
from benchmarks.publisher import PublisherProbe
from benchmarks.receive import _drain
from meshcommon import topics
from meshcommon.waiting import wait_until

HOST = "127.0.95"
RATE = 500
SECONDS = 4.0


def run_once(
    interp: Interpreter, rate: int = RATE, validate: bool | None = None, overrides: str = "all"
) -> dict[str, float]:
    """``validate``: None leaves the services' default (an older checkout has none)."""
    switch = {} if validate is None else {"VALIDATE_GOSSIP": str(validate).lower()}
    work = Path(tempfile.mkdtemp(prefix="bench-forward-"))
    log = work / "messages.jsonl"
    with contextlib.ExitStack() as stack:
        pub = PublisherProbe(
            stack.enter_context(
                spawned(TOOLS.probe("publisher", "--host", f"{HOST}.1"), pipes=True)
            )
        )
        agent_ip, mon_ip = f"{HOST}.10", f"{HOST}.100"
        agent = stack.enter_context(
            spawned(
                interp.module("chorus_agent"),
                {
                    "AGENT_HOST": agent_ip,
                    "AGENT_P2P_HOST": agent_ip,
                    "AGENT_ALLOW_LOOPBACK": "true",
                    "AGENT_BOOTSTRAP_PEERS": pub.addr,
                    "AGENT_BOOTSTRAP_REFRESH_S": "1",
                    "AGENT_BROADCAST_INTERVAL_S": "3600",
                    "AGENT_LOG_LEVEL": "WARNING",
                    **{f"AGENT_{k}": v for k, v in switch.items()},
                    "AGENT_P2P_OVERRIDES": overrides,
                },
            )
        )
        health = wait_http(f"http://{agent_ip}:8080/api/health")
        agent_id = str(health["peer_id"])
        agent_addr = f"/ip4/{agent_ip}/tcp/9000/p2p/{agent_id}"
        monitor = stack.enter_context(
            spawned(
                interp.module("hmmm_monitor"),
                {
                    "MONITOR_HOST": mon_ip,
                    "MONITOR_P2P_HOST": mon_ip,
                    "MONITOR_ALLOW_LOOPBACK": "true",
                    "MONITOR_BOOTSTRAP_PEERS": agent_addr,
                    "MONITOR_BOOTSTRAP_REFRESH_S": "1",
                    "MONITOR_BOOTSTRAP_CACHE_PATH": str(work / "cache.json"),
                    "MONITOR_LOG_LEVEL": "WARNING",
                    **{f"MONITOR_{k}": v for k, v in switch.items()},
                    "MONITOR_P2P_OVERRIDES": overrides,
                },
                stdout=stack.enter_context(log.open("wb")),
            )
        )
        monitor_id = str(wait_http(f"http://{mon_ip}:8080/api/health")["peer_id"])
        if not pub.ask(cmd="wait_mesh", peer_id=agent_id, within_s=30)["in_mesh"]:
            raise RuntimeError("the agent never joined the publisher's mesh")

        def monitor_in_agent_mesh() -> bool:
            import httpx

            view = httpx.get(f"http://{agent_ip}:8080/api/v1/mesh", timeout=2).json()
            return monitor_id in view["topics"][topics.COORDINATION]["mesh"]

        wait_until(monitor_in_agent_mesh, within_s=30, interval=0.2, what="monitor meshed")
        tag = f"f{rate}"
        cpu0 = cpu_seconds([agent.pid])[agent.pid]
        pub.start_publishing(rate, SECONDS, tag)
        sent = int(pub.finish()["sent"])
        _drain(log, [tag], sent)
        cpu = cpu_seconds([agent.pid])[agent.pid] - cpu0
        d = summarize(log, [tag], sent)
        del monitor
    return {
        "agent_us_per_forwarded": cpu / max(1, d.received) * 1e6,
        "delivered_pct": 100.0 * d.received / max(1, d.sent),
        "p50_ms": d.p50_ms,
        "p99_ms": d.p99_ms,
    }


if __name__ == "__main__":
    import argparse
    import statistics

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rate", type=int, default=RATE)
    p.add_argument("--python", default=None, help="interpreter whose checkout runs")
    a = p.parse_args()
    interp = Interpreter(a.python) if a.python else Interpreter()
    for validate in (False, True):
        outs = [run_once(interp, a.rate, validate) for _ in range(a.runs)]
        med = {k: statistics.median(o[k] for o in outs) for k in outs[0]}
        print(f"validate={validate}: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))
