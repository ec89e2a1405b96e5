"""``python -m meshlocal`` (``make run``) never leaves a process behind.

Each test starts the real runner with 2 agents in its own process group, its stdout a pipe,
waits until its 4 children (WHOOSH, monitor, 2 agents) run their services, and then does to
it what a user, a terminal or a supervisor does: closes the pipe (``| tee`` died with the
same Ctrl-C) and signals the group, signals it twice, or SIGKILLs the runner alone. The
services need not be healthy, only running. Loopback only: agents on 127.0.210.1-2, WHOOSH
and the monitor on 127.0.211.x (a pair per test). Whatever a test started is killed by PID
at the end, also when it fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform != "linux", reason="process groups, prctl: Linux"),
]

DEADLINE = 30.0  # generous: a busy 2-core machine starts 4 Python services slowly
AGENTS = 2
CHILDREN = AGENTS + 2
PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Runner:
    proc: subprocess.Popen[bytes]
    children: list[psutil.Process]
    stderr_path: Path
    output: list[str] = field(default_factory=list)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close_stdout(self) -> None:
        """The reader goes away: the runner's next write gets EPIPE."""
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def signal_group(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)  # its own group: start_new_session below

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"runner still running {DEADLINE:.0f}s after the signal\n{self.stderr()}")


def _alive(p: psutil.Process) -> bool:
    try:
        return bool(p.is_running() and p.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _poll(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > deadline:
            raise AssertionError(f"not within {deadline:.0f}s: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def _services(runner_pid: int) -> list[psutil.Process]:
    """The runner's children that already run their service (past die_with_parent.py)."""
    out = []
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(runner_pid).children():
            with contextlib.suppress(psutil.Error):
                cmd = child.cmdline()
                if "-m" in cmd and not any("die_with_parent" in arg for arg in cmd):
                    out.append(child)
    return out


def _all_gone(children: list[psutil.Process]) -> Callable[[], bool]:
    return lambda: not any(_alive(c) for c in children)


@contextlib.contextmanager
def _runner(tmp_path: Path, slot: int) -> Iterator[Runner]:
    """The runner with its children up; on the way out, kill whatever is left by PID."""
    stderr_path = tmp_path / "runner.stderr"
    cmd = [
        sys.executable,
        "-m",
        "meshlocal",
        f"--agents={AGENTS}",
        "--agent-net=127.0.210",
        f"--whoosh-ip=127.0.211.{10 * slot + 2}",
        f"--monitor-ip=127.0.211.{10 * slot + 3}",
        f"--run-dir={tmp_path / 'run'}",
    ]
    seen: dict[int, psutil.Process] = {}
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group, as in a terminal
        )
    runner = Runner(proc, [], stderr_path)
    try:

        def up() -> bool:
            assert proc.poll() is None, f"runner exited early\n{runner.stderr()}"
            for child in _services(proc.pid):
                seen.setdefault(child.pid, child)
            return len(seen) >= CHILDREN

        took = _poll(up, f"{CHILDREN} services started by the runner")
        print(f"\n{CHILDREN} services up after {took:.1f}s")
        runner.children = list(seen.values())
        assert all(_alive(c) for c in runner.children)
        yield runner
    finally:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children(recursive=True):
                seen.setdefault(child.pid, child)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        for child in seen.values():
            with contextlib.suppress(psutil.Error):
                child.kill()  # psutil checks it is still the same process (PID reuse)
        for child in seen.values():
            with contextlib.suppress(psutil.Error):
                child.wait(timeout=DEADLINE)  # and reaps it if it was re-parented to us


@contextlib.contextmanager
def _subreaper() -> Iterator[None]:
    """Make this test process the subreaper of its descendants: children orphaned by a
    killed runner are re-parented to us (not to PID 1, which may never reap them), so we
    can reap them and read how they died."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip(f"PR_SET_CHILD_SUBREAPER: errno {ctypes.get_errno()}")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


STOP_SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


@pytest.mark.parametrize("sig", STOP_SIGNALS, ids=[s.name for s in STOP_SIGNALS])
def test_signal_to_the_group_with_stdout_closed_stops_every_child(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C (SIGINT), a supervisor (SIGTERM), a closed terminal (SIGHUP), each after the
    reader of stdout went away: the runner stops everything and exits cleanly."""
    with _runner(tmp_path, slot=STOP_SIGNALS.index(sig)) as run:
        run.close_stdout()
        run.signal_group(sig)
        rc = run.wait()
        # It stopped (and reaped) them before exiting: nothing is left to wait for.
        left = [c.pid for c in run.children if _alive(c)]
        assert left == [], f"children alive after the runner exited: {left}"
        stderr = run.stderr()
        assert rc == 0, f"runner exited {rc}\n{stderr}"
        assert "Traceback" not in stderr, stderr


def test_a_second_signal_while_stopping_kills_at_once(tmp_path: Path) -> None:
    """A child that does not stop on SIGTERM (here: SIGSTOPped) would hold the runner for its
    10 s grace period; a second Ctrl-C must SIGKILL it instead of being ignored."""
    with _runner(tmp_path, slot=3) as run:
        assert run.proc.stdout is not None
        stdout = run.proc.stdout

        def read() -> None:
            for raw in stdout:
                run.output.append(raw.decode(errors="replace"))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        stuck = run.children[0]
        stuck.suspend()  # SIGSTOP: SIGTERM stays pending, SIGKILL still works
        run.signal_group(signal.SIGINT)
        _poll(lambda: any(line.startswith("stopping") for line in run.output), "stopping...")
        assert _alive(stuck)
        started = time.monotonic()
        run.signal_group(signal.SIGINT)
        rc = run.wait()
        took = time.monotonic() - started
        reader.join(timeout=DEADLINE)
        _poll(_all_gone(run.children), "every child gone")
        assert rc == 0, run.stderr()
        output = "".join(run.output)
        assert f"\nkilled {CHILDREN} processes" in output, output
        print(f"runner exited {took:.1f}s after the second signal")


def test_children_die_with_a_runner_killed_outright(tmp_path: Path) -> None:
    """SIGKILL to the runner alone: no handler runs, the kernel's parent-death signal
    (die_with_parent.py) must take every child down with it."""
    with _subreaper(), _runner(tmp_path, slot=4) as run:
        pids = [c.pid for c in run.children]
        run.proc.kill()
        run.wait()
        died: dict[int, int] = {}

        def reaped() -> bool:
            for pid in pids:
                if pid not in died:
                    with contextlib.suppress(ChildProcessError):
                        done, status = os.waitpid(pid, os.WNOHANG)
                        if done:
                            died[pid] = status
            return len(died) == len(pids)

        took = _poll(reaped, "every orphaned child reaped")
        signals = {pid: os.WTERMSIG(s) if os.WIFSIGNALED(s) else None for pid, s in died.items()}
        assert set(signals.values()) == {signal.SIGKILL}, signals
        print(f"children gone {took:.1f}s after the runner was killed")
