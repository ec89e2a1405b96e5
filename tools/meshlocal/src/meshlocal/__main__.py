"""``python -m meshlocal`` (``make run``): the whole mesh on this machine, no Docker.

Starts WHOOSH, the HMMM monitor and N agents as local processes, prints where each one
listens, then a live one-screen summary (discovered / connected / heard) until Ctrl-C,
when it stops every process it started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType
from typing import Any

from meshlocal.launcher import LocalMesh, MeshLayout


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m meshlocal",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--agents", type=int, default=10, help="number of agents (default 10)")
    p.add_argument(
        "--broadcast-interval",
        type=float,
        default=10.0,
        help="agents' availability broadcast period in seconds (default 10)",
    )
    p.add_argument(
        "--agent-net",
        default="127.0.1",
        help="agents listen on <agent-net>.1 ... .N (default 127.0.1)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=0,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    return p.parse_args(argv)


def summary_lines(mesh: LocalMesh, status: dict[str, Any], started: float) -> list[str]:
    lay = mesh.layout
    w, c = status["whoosh"], status["coverage"]
    lines = [
        f"CHORUS mesh, {lay.agents} agents, up {time.monotonic() - started:5.1f}s "
        f"(Ctrl-C stops everything)",
        "",
    ]
    if w is None:
        lines.append("WHOOSH   discovered: (not answering yet)")
    else:
        expected = "?" if w.get("expected") is None else w["expected"]
        lines.append(
            f"WHOOSH   discovered: {w.get('healthy', 0)}/{expected} healthy"
            f", {w.get('unreachable', 0)} unreachable"
        )
    if c is None:
        lines.append("monitor  (not answering yet)")
    else:
        lines.append(
            f"monitor  connected: {c.get('connected', 0)}/{c.get('expected', 0)}"
            f"   heard: {c.get('heard', 0)}/{c.get('expected', 0)}"
            f" (within {c.get('heard_window_s', '?')}s)"
        )
        missing = [m.get("name") or m.get("peer_id", "?")[-8:] for m in c.get("missing", [])]
        if missing:
            lines.append(f"         not heard yet: {', '.join(missing)}")
    if status["dead"]:
        lines.append(f"EXITED   {', '.join(status['dead'])} (see logs in {mesh.run_dir})")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    layout = MeshLayout(
        agents=args.agents, agent_net=args.agent_net, broadcast_interval_s=args.broadcast_interval
    )
    mesh = LocalMesh(layout)
    mesh.build()

    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    print(f"run dir (logs, keys, monitor's messages.jsonl): {mesh.run_dir}")
    for proc in mesh.processes:
        print(f"  {proc.name:<13} {proc.url}")
    print(f"  admin token   {mesh.admin_token}   (for POST endpoints; WHOOSH_ADMIN_TOKEN)")
    print(
        f"try: curl -s {layout.whoosh_url}/api/v1/bootstrap-peers\n"
        f"     curl -s {layout.monitor_url}/api/v1/coverage\n"
        f"     open {layout.monitor_url}/ for the dashboard\n"
    )
    tty = sys.stdout.isatty()
    started = time.monotonic()
    mesh.start()
    last: list[str] = []
    try:
        while not stopping:
            lines = summary_lines(mesh, mesh.status(), started)
            if tty:
                sys.stdout.write("\x1b[s\x1b[J" + "\n".join(lines) + "\x1b[u")
                sys.stdout.flush()
            elif lines[2:] != last[2:]:
                print(" | ".join(line.strip() for line in lines[2:]), flush=True)
            last = lines
            if args.duration and time.monotonic() - started > args.duration:
                break
            time.sleep(1.0)
    finally:
        if tty:
            print("\n" * len(last))
        print("stopping...", flush=True)
        t0 = time.monotonic()
        mesh.stop()
        print(f"stopped {len(mesh.processes)} processes in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
