"""Where the CPU goes: py-spy profiles of the three processes the performance work is about.

    python -m benchmarks.profile monitor   --py-spy PATH [--python PY] [--rate 2000]
    python -m benchmarks.profile forwarder --py-spy PATH [--python PY] [--rate 1000]
    python -m benchmarks.profile idle-agent --py-spy PATH [--python PY]

- monitor: one publisher probe -> a real hmmm_monitor process at a saturating rate.
- forwarder: publisher probe -> a real chorus_agent -> a receiver probe (the agent is not
  subscribed-to by the publisher's receiver, so it forwards every message).
- idle-agent: one agent of an idle 20-agent local mesh (30 s broadcasts), 30 s.

py-spy is not a project dependency: ``python3 -m venv /tmp/spy && /tmp/spy/bin/pip install
py-spy``. Each run writes the raw (collapsed) profile next to a summary: busy samples by
package and by function, self and inclusive (idle samples, a thread waiting in epoll or a
lock, are left out). ``--python`` profiles another checkout's services.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks import mesh
from benchmarks.procs import TOOLS, Interpreter, spawned, wait_http
from benchmarks.publisher import PublisherProbe
from meshlocal import LocalMesh

IDLE_LEAVES = (
    "EpollIOManager.get_events",
    "EpollSelector.select",
    "select (selectors.py)",
    "wait (threading.py)",
    "_worker (concurrent",
    "poll (selectors.py)",
)


def record(py_spy: str, pid: int, seconds: float, out: Path) -> None:
    subprocess.run(
        [py_spy, "record", "--pid", str(pid), "-d", str(int(seconds)), "--format", "raw",
         "-o", str(out), "--nonblocking", "--threads", "--rate", "200"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 60,
    )  # fmt: skip


def _frame(raw: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (package/file.py)``."""
    m = re.match(r"^(.*?) \((.*?)(?::\d+)?\)$", raw.strip())
    if not m:
        return raw.strip()
    func, path = m.groups()
    for marker in ("site-packages/", "lib/python3.11/", "/src/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path})"


def summarize(raw: Path, top: int = 20) -> str:
    busy = idle = 0
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    pkg: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [
            _frame(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        n = int(count)
        if frames[-1].startswith(IDLE_LEAVES) or "acquire" in frames[-1].split(" ")[0]:
            idle += n
            continue
        busy += n
        self_t[frames[-1]] += n
        pkg[frames[-1].split("(")[-1].split("/")[0].rstrip(")")] += n
        for f in set(frames):
            incl[f] += n
    if not busy:
        return "no busy samples"
    pct = lambda v: f"{100 * v / busy:5.1f}%"  # noqa: E731
    lines = [f"busy samples {busy} (idle {idle} left out)", "", "self, by package:"]
    lines += [f"  {pct(v)}  {k}" for k, v in pkg.most_common(12)]
    lines += ["", "self, by function:"]
    lines += [f"  {pct(v)}  {k}" for k, v in self_t.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {pct(v)}  {k}" for k, v in incl.most_common(top + 15)]
    return "\n".join(lines)


def profile_monitor(interp: Interpreter, py_spy: str, rate: float, out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="profile-monitor-"))
    with contextlib.ExitStack() as stack:
        pub = PublisherProbe(
            stack.enter_context(
                spawned(TOOLS.probe("publisher", "--host", "127.0.94.1"), pipes=True)
            )
        )
        env = {
            "MONITOR_HOST": "127.0.94.100",
            "MONITOR_P2P_HOST": "127.0.94.100",
            "MONITOR_ALLOW_LOOPBACK": "true",
            "MONITOR_BOOTSTRAP_PEERS": pub.addr,
            "MONITOR_BOOTSTRAP_CACHE_PATH": str(work / "cache.json"),
            "MONITOR_LOG_LEVEL": "WARNING",
        }
        log = stack.enter_context((work / "messages.jsonl").open("wb"))
        monitor = stack.enter_context(spawned(interp.module("hmmm_monitor"), env, stdout=log))
        monitor_id = wait_http("http://127.0.94.100:8080/api/health")["peer_id"]
        pub.ask(cmd="wait_mesh", peer_id=monitor_id, within_s=30)
        pub.start_publishing(rate, 12, "profile")
        time.sleep(1)
        record(py_spy, monitor.pid, 8, out)
        pub.finish()


def profile_forwarder(interp: Interpreter, py_spy: str, rate: float, out: Path) -> None:
    ip = "127.0.93.1"
    env = {
        "AGENT_NAME": "profile-forwarder",
        "AGENT_HOST": ip,
        "AGENT_P2P_HOST": ip,
        "AGENT_ALLOW_LOOPBACK": "true",
        "AGENT_LOG_LEVEL": "WARNING",
    }
    with contextlib.ExitStack() as stack:
        agent = stack.enter_context(spawned(interp.module("chorus_agent"), env))
        health = wait_http(f"http://{ip}:8080/api/health")
        addr = health["multiaddrs"][0]
        pub, rcv = (
            PublisherProbe(
                stack.enter_context(
                    spawned(TOOLS.probe("publisher", "--host", f"127.0.93.{k}"), pipes=True)
                )
            )
            for k in (2, 3)
        )
        for probe in (pub, rcv):
            probe.ask(cmd="connect", peer_id=health["peer_id"], addr=addr)
            probe.ask(cmd="wait_mesh", peer_id=health["peer_id"], within_s=30)
        pub.start_publishing(rate, 12, "profile")
        time.sleep(1)
        record(py_spy, agent.pid, 8, out)
        pub.finish()


def profile_idle_agent(interp: Interpreter, py_spy: str, out: Path) -> None:
    local = LocalMesh(mesh.layout(20, 30.0), python=interp.python)
    try:
        local.start()
        local.wait_for(
            lambda: local.get_json(f"{local.layout.monitor_url}/api/v1/coverage")["heard"] == 20,
            timeout=180,
            what="20/20 heard",
        )
        time.sleep(5)
        pid = local.service("agent-05").pid
        assert pid is not None
        record(py_spy, pid, 30, out)
    finally:
        local.stop()
        shutil.rmtree(local.run_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    p.add_argument("scenario", choices=["monitor", "forwarder", "idle-agent"])
    p.add_argument("--py-spy", required=True, help="path to a py-spy executable")
    p.add_argument("--python", default=sys.executable, help="interpreter whose checkout runs")
    p.add_argument("--rate", type=float, default=0, help="msg/s (monitor 2000, forwarder 1000)")
    p.add_argument("--out", default="", help="raw profile path (default: a temporary file)")
    args = p.parse_args(argv)
    interp = Interpreter(args.python)
    out = Path(args.out or tempfile.mkstemp(prefix=f"profile-{args.scenario}-", suffix=".txt")[1])
    if args.scenario == "monitor":
        profile_monitor(interp, args.py_spy, args.rate or 2000, out)
    elif args.scenario == "forwarder":
        profile_forwarder(interp, args.py_spy, args.rate or 1000, out)
    else:
        profile_idle_agent(interp, args.py_spy, out)
    print(f"raw profile: {out}\n")
    print(summarize(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
