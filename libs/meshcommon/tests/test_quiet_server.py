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


def test_idle_server_never_wakes_and_keeps_date_fresh() -> None:
    """No timer: over two idle seconds the loop checks for exit only once, yet each
    response carries the current second's Date; setting should_exit from another thread
    stops it at once."""
    import asyncio
    import threading

    import uvicorn
    from fastapi import FastAPI

    from meshcommon.quiet_server import QuietServer

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    port = free_port()
    server = QuietServer(
        uvicorn.Config(app, host=HOST, port=port, log_config=None, log_level="warning")
    )
    ticks = 0
    on_tick = server.on_tick

    async def counted(counter: int) -> bool:
        nonlocal ticks
        ticks += 1
        return await on_tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        first, _ = wait_until(
            lambda: httpx.get(f"http://{HOST}:{port}/ping", timeout=2),
            lambda r: r.status_code == 200,
            within_s=30,
            what="the server",
        )
        ticks_then = ticks
        time.sleep(2.2)
        assert ticks == ticks_then  # idle: not one wake-up
        second = httpx.get(f"http://{HOST}:{port}/ping", timeout=2)
        dates = [parsedate_to_datetime(r.headers["date"]).timestamp() for r in (first, second)]
        assert dates[1] - dates[0] >= 2  # made when asked, not frozen at start
        assert abs(dates[1] - time.time()) < 2
        started = time.monotonic()
        server.should_exit = True  # from this thread, as a test harness would
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert time.monotonic() - started < 0.9
    finally:
        server.should_exit = True
        thread.join(timeout=10)
