"""A separate publisher process for the gossip benchmark (own interpreter, own GIL)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from meshcommon import topics
from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig


async def run(peer: str, addr: str, port: int, rates: list[int], seconds: float) -> None:
    node = MeshRuntime(MeshNode(NodeConfig(listen_host="127.0.0.1", port=port)))
    await node.start()
    try:
        out = await node.connect(peer, [addr])
        assert out.connected, out
        await asyncio.sleep(3)  # mesh formation (heartbeat 1 s); a benchmark, not a test
        for rate in rates:
            count = max(5, int(rate * seconds))
            start = time.monotonic()
            for i in range(count):
                payload = {
                    "type": "bench",
                    "rate": rate,
                    "i": i,
                    "sent": time.time(),
                    "pad": "x" * 200,
                }
                await node.publish(topics.COORDINATION, json.dumps(payload).encode())
                delay = start + (i + 1) / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.sleep(3)  # let the tail arrive before the next rate
        print("done", flush=True)
    finally:
        await node.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--peer", required=True)
    p.add_argument("--addr", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rates", default="2,100,250,500")
    p.add_argument("--seconds", type=float, default=4.0)
    a = p.parse_args()
    asyncio.run(run(a.peer, a.addr, a.port, [int(r) for r in a.rates.split(",")], a.seconds))
