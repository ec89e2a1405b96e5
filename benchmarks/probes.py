"""The benchmarks' libp2p ends, run as their own processes (``python probes.py ...``).

Run by path with whichever interpreter a benchmark chose, so they exercise that
checkout's ``meshcommon.p2p``; they use only its long-standing API (MeshNode, MeshRuntime,
NodeConfig). Each prints JSON lines on stdout and takes JSON commands on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from typing import Any

from meshcommon import topics
from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig
from meshcommon.swarm_key import read_swarm_key

PAD = "x" * 200  # a ~300-byte JSON message, like an availability broadcast


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def say(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


async def ping(host: str, count: int) -> None:
    """Two nodes, one connection: RTT of libp2p pings as the services see them (asyncio
    -> trio thread -> wire and back), after a warm-up."""
    a = MeshRuntime(MeshNode(NodeConfig(listen_host=host, port=free_port(host))))
    b_port = free_port(host)
    b = MeshRuntime(MeshNode(NodeConfig(listen_host=host, port=b_port)))
    await a.start()
    await b.start()
    try:
        out = await a.connect(b.peer_id, [f"/ip4/{host}/tcp/{b_port}/p2p/{b.peer_id}"])
        assert out.connected, out
        for _ in range(5):
            await a.ping(b.peer_id)
        rtts, calls = [], []
        for _ in range(count):
            started = time.perf_counter()
            rtts.append(await a.ping(b.peer_id))
            calls.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)  # idle peers: no back-to-back pipelining
        say({"rtt_ms": rtts, "call_ms": calls})
    finally:
        await a.stop()
        await b.stop()


async def publisher(host: str, pnet_key_file: str = "") -> None:
    """A mesh member that publishes paced bursts on command (under the private network of
    ``pnet_key_file`` when given)."""
    port = free_port(host)
    keys = (read_swarm_key(pnet_key_file).key,) if pnet_key_file else ()
    rt = MeshRuntime(MeshNode(NodeConfig(listen_host=host, port=port, pnet_keys=keys)))
    await rt.start()
    node = rt.node
    say({"peer_id": rt.peer_id, "addr": f"/ip4/{host}/tcp/{port}/p2p/{rt.peer_id}"})
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            cmd = json.loads(line)
            if cmd["cmd"] == "quit":
                return
            if cmd["cmd"] == "connect":
                out = await rt.connect(cmd["peer_id"], [cmd["addr"]])
                say({"connected": out.connected})
            elif cmd["cmd"] == "wait_mesh":
                say({"in_mesh": await _wait_mesh(rt, cmd["peer_id"], cmd.get("within_s", 30))})
            elif cmd["cmd"] == "publish":
                sent, elapsed = await rt.call(
                    _publish_paced, node, cmd["rate"], cmd["seconds"], cmd["tag"]
                )
                say({"sent": sent, "elapsed_s": elapsed})
    finally:
        await rt.stop()


async def _wait_mesh(rt: MeshRuntime, peer_id: str, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        snap = await rt.snapshot()
        if peer_id in snap.mesh_peers.get(topics.COORDINATION, ()):
            return True
        await asyncio.sleep(0.1)
    return False


async def _publish_paced(node: Any, rate: float, seconds: float, tag: str) -> tuple[int, float]:
    """In the node's trio thread: ``rate`` messages a second for ``seconds``, sent on a
    1 ms tick (no thread hop per message, so the publisher is not what saturates)."""
    import trio

    count = int(rate * seconds)
    started = time.monotonic()
    i = 0
    while i < count:
        due = min(count, int((time.monotonic() - started) * rate) + 1)
        while i < due:
            body = {"type": "bench", "tag": tag, "i": i, "sent": time.time(), "pad": PAD}
            await node.publish(topics.COORDINATION, json.dumps(body).encode())
            i += 1
        await trio.sleep(0.001)
    return count, time.monotonic() - started


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="probe", required=True)
    ping_p = sub.add_parser("ping")
    ping_p.add_argument("--host", required=True)
    ping_p.add_argument("--count", type=int, default=50)
    pub_p = sub.add_parser("publisher")
    pub_p.add_argument("--host", required=True)
    pub_p.add_argument("--pnet-key-file", default="", help="swarm.key: a closed mesh")
    a = p.parse_args()
    if a.probe == "ping":
        asyncio.run(ping(a.host, a.count))
    else:
        asyncio.run(publisher(a.host, a.pnet_key_file))


if __name__ == "__main__":
    main()
