"""The 1 Hz uvicorn loop: it still serves, keeps the Date header fresh, and a signal stops it
at once (not after a tick)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from meshcommon.waiting import wait_until

HOST = "127.0.98.1"
APP = """
import sys
from fastapi import FastAPI
from meshcommon.config import ServiceSettings
from meshcommon.serve import run_http
app = FastAPI()
@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"ok": "yes"}
run_http(app, ServiceSettings(host=sys.argv[1], port=int(sys.argv[2]), log_level="WARNING"))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_and_stops_at_once_on_a_signal(sig: signal.Signals) -> None:
    port = free_port()
    # SIGINT as a terminal leaves it: a shell running this suite in the background without
    # job control hands it down ignored, and uvicorn restores and re-raises what it found.
    proc = subprocess.Popen(
        [sys.executable, "-c", APP, HOST, str(port)],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        resp, _ = wait_until(
            lambda: httpx.get(f"http://{HOST}:{port}/ping", timeout=2),
            lambda r: r.status_code == 200,
            within_s=30,
            what="the server",
        )
        sent = parsedate_to_datetime(resp.headers["date"]).timestamp()
        assert abs(sent - time.time()) < 3  # the Date header is kept current
        time.sleep(0.05)  # mid-tick
        started = time.monotonic()
        os.kill(proc.pid, sig)
        # uvicorn shuts down cleanly, then re-raises the signal it caught (its exit status)
        assert proc.wait(timeout=10) == -sig
        assert time.monotonic() - started < 0.9  # woken by the signal, not by the tick
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
