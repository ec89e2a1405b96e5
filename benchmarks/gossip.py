"""GossipSub delivery through one forwarding agent: publisher -> agent -> receiver.

Three processes, as in a deployment: a publisher process, a real ``chorus_agent`` process
forwarding, and the receiver here (not connected to the publisher, as the monitor is not
connected to most agents). Paced publishing at several rates; latency from a timestamp in
the payload (same machine, same clock).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict

import httpx
import psutil

from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig, ReceivedMessage

RATES = (2, 100, 250, 500)
SECONDS = 4.0


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=1).json()
        except (httpx.HTTPError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def run(peer: str, addr: str) -> dict[int, dict]:
    by_rate: dict[int, list[float]] = defaultdict(list)

    def on_message(msg: ReceivedMessage) -> None:
        now = time.time()
        if b'"bench"' in msg.data:
            d = json.loads(msg.data)
            by_rate[d["rate"]].append((now - d["sent"]) * 1000)

    rcv = MeshRuntime(
        MeshNode(NodeConfig(listen_host="127.0.0.1", port=_free_port()), on_message=on_message)
    )
    publisher = None
    try:
        await rcv.start()
        assert (await rcv.connect(peer, [addr])).connected
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.publisher",
            "--peer",
            peer,
            "--addr",
            addr,
            "--port",
            str(_free_port()),
            "--rates",
            ",".join(map(str, RATES)),
            "--seconds",
            str(SECONDS),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.wait_for(publisher.wait(), 300)
        snap = await rcv.snapshot()
        dropped = sum(snap.dropped_by_topic.values())
    finally:
        if publisher and publisher.returncode is None:
            publisher.kill()
        await rcv.stop()
    out = {}
    for rate in RATES:
        lat = sorted(by_rate[rate])
        out[rate] = {
            "sent": max(5, int(rate * SECONDS)),
            "delivered": len(lat),
            "median_ms": statistics.median(lat) if lat else float("nan"),
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
            "dropped": dropped,
        }
    return out


def forwarding_agent() -> tuple[subprocess.Popen[bytes], str, str]:
    """A real chorus_agent process; returns it with its peer ID and multiaddr."""
    ip = "127.0.93.1"
    env = {
        **os.environ,
        "AGENT_NAME": "bench-forwarder",
        "AGENT_HOST": ip,
        "AGENT_P2P_HOST": ip,
        "AGENT_ALLOW_LOOPBACK": "true",
        "AGENT_LOG_LEVEL": "WARNING",
    }
    agent = subprocess.Popen(
        [sys.executable, "-m", "chorus_agent"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        health = _wait_http(f"http://{ip}:8080/api/health")
    except BaseException:
        agent.kill()
        raise
    return agent, health["peer_id"], health["multiaddrs"][0]


def main() -> None:
    print("== gossip: publisher process -> chorus_agent process -> receiver (300-byte JSON) ==")
    print(f"{'rate/s':>7} {'sent':>6} {'delivered':>10} {'median ms':>10} {'p99 ms':>8}")
    agent, peer, addr = forwarding_agent()
    try:
        proc = psutil.Process(agent.pid)
        cpu0 = sum(proc.cpu_times()[:2])
        results = asyncio.run(run(peer, addr))
        cpu_s = sum(proc.cpu_times()[:2]) - cpu0
        rss_mib = proc.memory_info().rss / 2**20
        metrics = httpx.get("http://127.0.93.1:8080/metrics", timeout=5).text
        forwarder_drops = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("chorus_agent_outbound_dropped{")
        )
    finally:
        agent.terminate()
        agent.wait(10)
    for rate, r in results.items():
        print(
            f"{rate:>7} {r['sent']:>6} {r['delivered']:>10} {r['median_ms']:>10.1f} "
            f"{r['p99_ms']:>8.1f}"
        )
    print(
        f"receiver subscription-queue drops: {next(iter(results.values()))['dropped']}, "
        f"forwarder outbound-queue drops: {forwarder_drops:.0f}"
    )
    forwarded = sum(r["delivered"] for r in results.values())
    print(
        f"forwarding agent under load: {cpu_s * 1000 / max(1, forwarded):.2f} ms CPU per "
        f"forwarded message ({cpu_s:.1f} s CPU in all), RSS {rss_mib:.0f} MiB"
    )
