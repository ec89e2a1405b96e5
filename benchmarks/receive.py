"""How much one message costs the monitor, and how fast it keeps up.

One publisher probe process -> a real ``hmmm_monitor`` process that has it as its static
bootstrap peer (no WHOOSH). One publisher, as when one agent is busy: with several, the
monitor would also forward each one's messages to the others (it is a mesh member). At
each rate the publisher sends for a few seconds; the monitor's JSON-lines log says what
arrived and when; its CPU time says what it cost.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

from benchmarks.messages import Delivery, bench_latencies, summarize
from benchmarks.procs import TOOLS, Interpreter, cpu_seconds, spawned, wait_http
from benchmarks.publisher import PublisherProbe
from meshcommon.swarm_key import write_swarm_key

HOST = "127.0.94"
RATES = (250, 500, 1000, 2000, 4000)
SECONDS = 4.0
COST_RATE = 500  # the rate at which the per-message cost is quoted (below saturation)
P99_BOUND_MS = 100.0


def run_once(
    interp: Interpreter,
    rates: tuple[int, ...] = RATES,
    overrides: str = "all",
    private_network: bool = False,
    validate: bool | None = None,
) -> dict[str, float]:
    """One monitor, every rate in turn: per-message cost and the highest clean rate.
    ``private_network``: publisher and monitor share a fresh swarm.key (a closed mesh:
    every frame also XORed with XSalsa20 both ways)."""
    work = Path(tempfile.mkdtemp(prefix="bench-receive-"))
    log = work / "messages.jsonl"
    results: dict[int, tuple[Delivery, float]] = {}
    key_args: list[str] = []
    pnet_env: dict[str, str] = {}
    if private_network:
        key = str(write_swarm_key(work / "swarm.key"))
        key_args, pnet_env = ["--pnet-key-file", key], {"MONITOR_PNET_KEY_FILE": key}
    with contextlib.ExitStack() as stack:
        pub = PublisherProbe(
            stack.enter_context(
                spawned(TOOLS.probe("publisher", "--host", f"{HOST}.1", *key_args), pipes=True)
            )
        )
        mon_ip = f"{HOST}.100"
        env = {
            "MONITOR_HOST": mon_ip,
            "MONITOR_P2P_HOST": mon_ip,
            "MONITOR_ALLOW_LOOPBACK": "true",
            "MONITOR_BOOTSTRAP_PEERS": pub.addr,
            "MONITOR_BOOTSTRAP_REFRESH_S": "1",
            "MONITOR_BOOTSTRAP_CACHE_PATH": str(work / "cache.json"),
            "MONITOR_LOG_LEVEL": "WARNING",
            "MONITOR_P2P_OVERRIDES": overrides,
            **pnet_env,
        }
        if validate is not None:  # None: the monitor's default (an older checkout has none)
            env["MONITOR_VALIDATE_GOSSIP"] = str(validate).lower()
        monitor = stack.enter_context(
            spawned(interp.module("hmmm_monitor"), env, stdout=stack.enter_context(log.open("wb")))
        )
        monitor_id = str(wait_http(f"http://{mon_ip}:8080/api/health")["peer_id"])
        if not pub.ask(cmd="wait_mesh", peer_id=monitor_id, within_s=30)["in_mesh"]:
            raise RuntimeError("the monitor never joined the publisher's mesh")
        for rate in rates:
            tags = [f"r{rate}"]
            cpu0 = cpu_seconds([monitor.pid])[monitor.pid]
            pub.start_publishing(rate, SECONDS, tags[0])
            sent = int(pub.finish()["sent"])
            _drain(log, tags, sent)
            cpu = cpu_seconds([monitor.pid])[monitor.pid] - cpu0
            results[rate] = (summarize(log, tags, sent), cpu)
    cost, cost_cpu = results.get(COST_RATE, next(iter(results.values())))
    clean = [r for r, (d, _) in results.items() if d.lost == 0 and d.p99_ms < P99_BOUND_MS]
    out = {
        "cost_us": cost_cpu / max(1, cost.received) * 1e6,
        "max_rate": float(max(clean)) if clean else 0.0,
    }
    for rate, (d, cpu) in results.items():
        out[f"{rate}/s delivered %"] = 100.0 * d.received / max(1, d.sent)
        out[f"{rate}/s p50 ms"] = d.p50_ms
        out[f"{rate}/s p99 ms"] = d.p99_ms
        out[f"{rate}/s cost us"] = cpu / max(1, d.received) * 1e6
    return out


def _drain(log: Path, tags: list[str], sent: int, within_s: float = 8.0) -> None:
    """Wait until everything arrived, or nothing more arrived for a second."""
    deadline = time.monotonic() + within_s
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        got = sum(len(bench_latencies(log, t)) for t in tags)
        if got >= sent:
            return
        if got != last:
            last, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > 1.0:
            return
        time.sleep(0.2)
