"""Agent process start -> ``/api/health`` answers (wall clock, as an operator sees it)."""

from __future__ import annotations

import tempfile
import time

from benchmarks.procs import Interpreter, spawned, wait_http
from meshcommon.swarm_key import write_swarm_key

IP = "127.0.95.1"


def run_once(interp: Interpreter) -> float:
    """Start of a keyed agent (a closed mesh, as deployed: the swarm.key is read at start)."""
    work = tempfile.mkdtemp(prefix="bench-start-")
    env = {
        "AGENT_NAME": "bench-start",
        "AGENT_HOST": IP,
        "AGENT_P2P_HOST": IP,
        "AGENT_ALLOW_LOOPBACK": "true",
        "AGENT_LOG_LEVEL": "WARNING",
        "AGENT_IDENTITY_PATH": f"{work}/id.key",
        "AGENT_PNET_KEY_FILE": str(write_swarm_key(f"{work}/swarm.key")),
    }
    started = time.monotonic()
    with spawned(interp.module("chorus_agent"), env):
        wait_http(f"http://{IP}:8080/api/health", within_s=60, interval=0.01)
        return time.monotonic() - started
