"""die_with_parent.py, the wrapper every service is started through: it sets the parent-death
signal, refuses to run when the launcher is already gone, and execs the service in place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import meshlocal.launcher as launcher
from meshlocal import ServiceProcess

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="prctl is Linux only")

GUARD = str(launcher._DIE_WITH_PARENT)
# What the exec'd program sees: its parent-death signal and its PID.
REPORT = (
    "import ctypes, os; v = ctypes.c_int(); "
    "ctypes.CDLL(None).prctl(2, ctypes.byref(v), 0, 0, 0); print(v.value, os.getpid())"
)


def _guarded(parent: int, *program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", GUARD, str(parent), *program],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_service_runs_in_place_with_sigkill_as_parent_death_signal() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", GUARD, str(os.getpid()), sys.executable, "-c", REPORT],
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert out.split() == [str(int(signal.SIGKILL)), str(proc.pid)]  # same PID after exec


def test_it_does_not_run_the_service_when_the_launcher_is_already_gone() -> None:
    # Its parent is this test process, not PID 1: as if the launcher had died before prctl.
    result = _guarded(1, sys.executable, "-c", "print('ran')")
    assert result.returncode == -signal.SIGKILL
    assert result.stdout == ""


def test_services_are_guarded_only_when_started_from_the_main_thread(tmp_path: Path) -> None:
    svc = ServiceProcess(name="x", module="x", env={}, url="", log_path=tmp_path / "x.log")
    assert svc.command()[:4] == [sys.executable, "-I", "-S", GUARD]
    assert svc.command()[-2:] == ["-m", "x"]

    # The kernel signals when the *thread* that forked exits: a worker thread's children
    # would die with that thread, so they run unguarded.
    seen: list[list[str]] = []
    worker = threading.Thread(target=lambda: seen.append(svc.command()))
    worker.start()
    worker.join()
    assert seen == [[sys.executable, "-m", "x"]]

    svc.die_with_parent = False
    assert svc.command() == [sys.executable, "-m", "x"]
