"""``python -m meshlocal`` (``make run``): the whole mesh on this machine, no Docker.

Starts WHOOSH, the HMMM monitor and N agents as local processes, prints where each one
listens, then a live one-screen summary (discovered / connected / heard) until Ctrl-C,
SIGTERM or SIGHUP (a closed terminal), when it stops every process it started: SIGTERM,
then SIGKILL after 10 s, or at once on a second signal. A closed or broken stdout does not
get in the way. If the runner itself is killed (SIGKILL), the kernel kills its children
(Linux, see die_with_parent.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
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
        "--whoosh-ip", default="127.0.0.2", help="WHOOSH listens here (default 127.0.0.2)"
    )
    p.add_argument(
        "--monitor-ip", default="127.0.0.3", help="the monitor listens here (default 127.0.0.3)"
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="logs, keys and messages.jsonl go here (default: a new chorus-mesh-* temp dir)",
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


class _Console:
    """stdout that never raises. The reader can go away at any time (``| tee`` killed by the
    same Ctrl-C, a closed terminal): a failed write must not keep the runner from stopping
    its processes. After the first failure, fd 1 is pointed at /dev/null (so the
    interpreter's own flush at exit cannot fail either) and nothing more is written."""

    def __init__(self) -> None:
        self.broken = sys.stdout is None
        if self.broken:
            _stdout_to_devnull()
        self.tty = not self.broken and _isatty()

    def write(self, text: str) -> None:
        if self.broken:
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, ValueError):  # EPIPE, EIO (hung-up terminal), closed file
            self.broken = True
            _stdout_to_devnull()

    def line(self, text: str = "") -> None:
        self.write(text + "\n")


def _isatty() -> bool:
    try:
        return sys.stdout.isatty()
    except (OSError, ValueError):
        return False


def _stdout_to_devnull() -> None:
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    if sys.stdout is None or sys.stdout.closed:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)


@dataclass
class _Stopping:
    """What the stop signals asked for. The handler only records the first one (the main
    loop checks between status reads and every 0.1 s while it sleeps), so cleanup runs in
    exactly one place, the ``finally`` in main; any later one escalates to SIGKILL."""

    mesh: LocalMesh
    signum: int | None = None
    killed: bool = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum  # first one: stop in order (SIGTERM, wait, SIGKILL)
        else:
            # Another one while stopping (Ctrl-C again, a supervisor losing patience):
            # do not make anyone wait, SIGKILL every child now; stop() just reaps them.
            self.killed = True
            self.mesh.kill()

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.signum is None and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    out = _Console()
    layout = MeshLayout(
        agents=args.agents,
        agent_net=args.agent_net,
        whoosh_ip=args.whoosh_ip,
        monitor_ip=args.monitor_ip,
        broadcast_interval_s=args.broadcast_interval,
    )
    mesh = LocalMesh(layout) if args.run_dir is None else LocalMesh(layout, run_dir=args.run_dir)
    # Handlers before the first child exists: from then on every way out goes through the
    # finally below. (SIGKILL cannot be handled: die_with_parent covers that one.)
    stopping = _Stopping(mesh)
    for sig in STOP_SIGNALS:
        signal.signal(sig, stopping.handle)

    mesh.build()
    out.line(f"run dir (logs, keys, monitor's messages.jsonl): {mesh.run_dir}")
    started = time.monotonic()
    last: list[str] = []
    try:
        # From the main thread: the children's parent-death signal is tied to this thread.
        if stopping.signum is None:
            mesh.start()
        for proc in mesh.processes:
            out.line(f"  {proc.name:<13} {proc.url:<26} pid {proc.pid}")
        out.line(f"  admin token   {mesh.admin_token}   (for POST endpoints; WHOOSH_ADMIN_TOKEN)")
        out.line(
            f"try: curl -s {layout.whoosh_url}/api/v1/bootstrap-peers\n"
            f"     curl -s {layout.monitor_url}/api/v1/coverage\n"
            f"     open {layout.monitor_url}/ for the dashboard\n"
        )
        while stopping.signum is None:
            lines = summary_lines(mesh, mesh.status(), started)
            if out.tty:
                out.write("\x1b[s\x1b[J" + "\n".join(lines) + "\x1b[u")
            elif lines[2:] != last[2:]:
                out.line(" | ".join(line.strip() for line in lines[2:]))
            last = lines
            if args.duration and time.monotonic() - started > args.duration:
                break
            stopping.sleep(1.0)
    finally:
        if out.tty:
            out.line("\n" * len(last))
        why = "" if stopping.signum is None else f" ({signal.Signals(stopping.signum).name})"
        out.line(f"stopping{why}... (again to kill at once)")
        t0 = time.monotonic()
        if stopping.killed:
            mesh.kill()
        mesh.stop()
        how = "killed" if stopping.killed else "stopped"
        out.line(f"{how} {len(mesh.processes)} processes in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
