"""Processes a benchmark starts: spawned with a chosen interpreter, measured with psutil,
always killed by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from meshcommon.waiting import wait_until

PROBES = str(Path(__file__).with_name("probes.py"))


@dataclass
class Interpreter:
    """Whose code runs: the services and probes of the checkout this Python belongs to."""

    python: str = sys.executable

    def module(self, module: str) -> list[str]:
        return [self.python, "-m", module]

    def probe(self, *args: str) -> list[str]:
        # By path, so another checkout's interpreter runs this checkout's probe script
        # against its own meshcommon.
        return [self.python, PROBES, *args]


# The benchmarks' own load generators (publishers) always run this checkout's code, so a
# before/after comparison changes only the services under test.
TOOLS = Interpreter()


@contextlib.contextmanager
def spawned(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    stdout: Any = subprocess.DEVNULL,
    pipes: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, SIGKILLed (with its own children) when the block ends. With
    ``pipes``, its stdin and stdout are pipes (a probe that takes commands)."""
    proc = subprocess.Popen(
        list(argv),
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
        stdout=subprocess.PIPE if pipes else stdout,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_http(url: str, within_s: float = 60, interval: float = 0.02) -> dict[str, object]:
    def get() -> dict[str, object]:
        resp = httpx.get(url, timeout=2)
        resp.raise_for_status()
        body: dict[str, object] = resp.json()
        return body

    value, _ = wait_until(get, within_s=within_s, interval=interval, what=url)
    return value


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
    return out


def wakeups(pids: Sequence[int]) -> dict[int, int]:
    """Each process's voluntary context switches, summed over its threads: how often one
    of its threads went to sleep (in epoll, a lock, a queue) and had to be woken again.
    psutil reads the main thread's only; the libp2p node lives in another."""
    out = {}
    for pid in pids:
        total = 0
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/status") as fh:
                    for line in fh:
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[1])
            out[pid] = total
    return out


def cpu_percent_over(pids: Sequence[int], seconds: float) -> dict[int, float]:
    """Each process's CPU use over the next ``seconds``, in % of one core."""
    before, t0 = cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    after, elapsed = cpu_seconds(pids), time.monotonic() - t0
    return {pid: (after[pid] - before[pid]) / elapsed * 100 for pid in before if pid in after}


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20
