"""The doctor command as a user runs it, for the process-level tests."""

from __future__ import annotations

import subprocess
import sys
import time


def doctor(*args: str) -> tuple[int, str, float]:
    """The doctor as a user runs it: exit status, output, seconds it took."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "hmmm_monitor", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started
