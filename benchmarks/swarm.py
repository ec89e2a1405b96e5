"""The README's Swarm path with stack.yml's defaults: ``docker stack deploy`` -> 10/10
heard, ``docker service scale CHORUS_chorus=20`` -> 20/20 heard.

Needs an engine and the images (``make images``); says so instead of measuring when they
are missing. A Swarm is initialised only if the engine has none, and left again after.
"""

from __future__ import annotations

import base64
import os
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.procs import rss_mib
from meshcommon.swarm_key import new_swarm_key
from meshcommon.waiting import TRANSIENT, wait_until

REPO = Path(__file__).resolve().parents[1]
STACK = "CHORUSBENCH"
SECRET = f"{STACK}_identity"  # the stack's agents derive their identities from it
PNET_SECRET = f"{STACK}_pnet"  # the private network's key (stack.yml requires one)
RSS_SETTLE_S = 30.0  # after 20/20 heard: first identify, peering and DHT walks are done


def images(tag: str) -> dict[str, str]:
    """The stack's images (``make images`` builds tag ``test``)."""
    return {
        "AGENT_IMAGE": f"chorus-agent:{tag}",
        "WHOOSH_IMAGE": f"whoosh:{tag}",
        "MONITOR_IMAGE": f"hmmm-monitor:{tag}",
    }


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {proc.stderr.strip()[:500]}")
    return proc.stdout


def unavailable(tag: str) -> str | None:
    """Why the Swarm rows cannot be measured here, or None."""
    try:
        docker("info", timeout=20)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"no Docker Engine ({exc}); `make images` starts one and builds the images"
    for image in images(tag).values():
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
            return f"image {image} missing: run `make images`"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def _heard(url: str) -> Any:
    resp = httpx.get(f"{url}/api/v1/coverage", timeout=5)
    resp.raise_for_status()
    return resp.json()


@dataclass(frozen=True)
class SwarmRun:
    deployed_s: float  # `docker stack deploy` -> 10/10 heard
    scaled_s: float  # `docker service scale ..=20` -> 20/20 heard
    agent_rss_mib: float  # median RSS of the 20 agents' processes, RSS_SETTLE_S later


def run_once(tag: str) -> SwarmRun:
    """The README's Swarm path, timed, and what an agent in the image weighs."""
    initialised = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
    if initialised:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    monitor_port = _free_port()
    env = {**os.environ, **images(tag), "WHOOSH_PUBLISHED_PORT": str(_free_port()),
           "MONITOR_PUBLISHED_PORT": str(monitor_port),
           "CHORUS_IDENTITY_SECRET": SECRET, "CHORUS_PNET_SECRET": PNET_SECRET}  # fmt: skip
    monitor = f"http://127.0.0.1:{monitor_port}"
    for name, value in ((SECRET, base64.b64encode(os.urandom(32))),
                        (PNET_SECRET, new_swarm_key().encode())):  # fmt: skip
        subprocess.run(
            ["docker", "secret", "create", name, "-"],
            input=value,
            check=True,
            capture_output=True,
            timeout=60,
        )
    try:
        started = time.monotonic()
        deploy = ["docker", "stack", "deploy", "--resolve-image", "never"]
        subprocess.run(
            [*deploy, "-c", str(REPO / "stack.yml"), STACK],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        _wait_heard(monitor, 10)
        deployed = time.monotonic() - started
        started = time.monotonic()
        docker("service", "scale", "--detach", f"{STACK}_chorus=20")
        _wait_heard(monitor, 20)
        scaled = time.monotonic() - started
        time.sleep(RSS_SETTLE_S)
        return SwarmRun(deployed, scaled, statistics.median(agent_rss_mib()))
    finally:
        docker("stack", "rm", STACK, check=False)
        wait_until(
            lambda: docker("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={STACK}"),
            lambda out: not out.strip(),
            within_s=120,
            interval=1,
            what="the stack's containers to go",
        )
        docker("secret", "rm", SECRET, PNET_SECRET, check=False)
        if initialised:
            docker("swarm", "leave", "--force", check=False)


def agent_rss_mib() -> list[float]:
    """RSS of every running agent container's process (the engine runs on this host, so its
    containers' processes are in this /proc)."""
    ids = docker(
        "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_chorus"
    ).split()
    if not ids:
        raise RuntimeError(f"no running {STACK}_chorus containers")
    pids = docker("inspect", "-f", "{{.State.Pid}}", *ids).split()
    return [rss_mib(int(pid)) for pid in pids]


def _wait_heard(monitor: str, n: int) -> None:
    wait_until(
        lambda: _heard(monitor),
        lambda c: c["expected"] == n and c["heard"] == n,
        within_s=300,
        interval=0.5,
        what=f"{n}/{n} heard",
        transient=(*TRANSIENT, RuntimeError),
    )
