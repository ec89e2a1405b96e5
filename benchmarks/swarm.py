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
from functools import partial
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


def run_once(tag: str, *, milestones: bool = False) -> SwarmRun:
    """The README's Swarm path, timed, and what an agent in the image weighs.
    ``milestones``: also print when every agent's container was running, listed by WHOOSH
    and expected by the monitor on the way to heard (where the seconds go; the extra
    polling costs CPU, so the timed rows of ``make bench`` run without it)."""
    initialised = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
    if initialised:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    monitor_port = _free_port()
    env = {**os.environ, **images(tag), "WHOOSH_PUBLISHED_PORT": str(_free_port()),
           "MONITOR_PUBLISHED_PORT": str(monitor_port),
           "CHORUS_IDENTITY_SECRET": SECRET, "CHORUS_PNET_SECRET": PNET_SECRET}  # fmt: skip
    monitor = f"http://127.0.0.1:{monitor_port}"
    whoosh = f"http://127.0.0.1:{env['WHOOSH_PUBLISHED_PORT']}"
    wait = partial(_print_milestones, whoosh=whoosh) if milestones else _wait_heard
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
        wait(monitor, 10, started)
        deployed = time.monotonic() - started
        started = time.monotonic()
        docker("service", "scale", "--detach", f"{STACK}_chorus=20")
        wait(monitor, 20, started)
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


def _print_milestones(monitor: str, n: int, started: float, *, whoosh: str) -> None:
    """Wait for n/n heard, printing when each step first reached n (seconds since
    ``started``, the deploy or scale command)."""
    reached = dict[str, float]()

    def counts() -> dict[str, int]:
        running = docker(
            "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_chorus"
        )
        coverage = _heard(monitor)
        agents = httpx.get(f"{whoosh}/api/v1/agents", timeout=5).json()["agents"]
        return {
            "running": len(running.split()),
            "listed by WHOOSH": len(agents),
            "expected by the monitor": coverage["expected"],
            "heard": coverage["heard"],
        }

    def note(now: dict[str, int]) -> bool:
        for step, count in now.items():
            if count >= n and step not in reached:
                reached[step] = time.monotonic() - started
        return now["heard"] == n

    wait_until(counts, note, within_s=300, interval=0.5, what=f"{n}/{n} heard",
               transient=(*TRANSIENT, RuntimeError, KeyError))  # fmt: skip
    print(f"    {n}/{n}: " + ", ".join(f"{k} {v:.1f} s" for k, v in reached.items()), flush=True)


def _wait_heard(monitor: str, n: int, started: float = 0.0) -> None:
    del started  # the caller times it
    wait_until(
        lambda: _heard(monitor),
        lambda c: c["expected"] == n and c["heard"] == n,
        within_s=300,
        interval=0.5,
        what=f"{n}/{n} heard",
        transient=(*TRANSIENT, RuntimeError),
    )


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="The README's Swarm path, once, with milestones")
    p.add_argument("--tag", default="test", help="image tag (make images: test)")
    args = p.parse_args()
    if why := unavailable(args.tag):
        raise SystemExit(why)
    print(run_once(args.tag, milestones=True))
