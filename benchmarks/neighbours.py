"""What the neighbours report adds to an idle agent (issue 19): the CPU of building the
report and of the identify sweep when no neighbour is new, in the node's own thread, with
N connected peers; the bytes it adds to each availability broadcast; and that cost as a
share of a core at the default 30 s period. Before this change both were zero, so the
figure is the whole difference.

    flock /tmp/chorus-heavy.lock .venv/bin/python -m benchmarks.neighbours --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import statistics
import time
from collections.abc import Awaitable, Callable

from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig
from meshcommon.topics import ALL_TOPICS

HOST = "127.0.96.1"
PERIOD_S = 30.0  # the agents' default broadcast (and ping) period
CALLS = 500


def _port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def run_once(n: int) -> tuple[float, float, int]:
    """(µs per report, µs per identify sweep with nothing new, bytes added)."""
    port = _port()
    agent = MeshRuntime(MeshNode(NodeConfig(HOST, port)))
    await agent.start()
    peers = [MeshRuntime(MeshNode(NodeConfig(HOST, _port()))) for _ in range(n)]
    try:
        for p in peers:
            await p.start()
            addr = f"/ip4/{HOST}/tcp/{port}/p2p/{agent.peer_id}"
            assert (await p.connect(agent.peer_id, [addr])).connected
        for p in peers:
            await agent.ping(p.peer_id)
        while await agent.identify_neighbours():
            pass
        node = agent.node

        async def per_call(fn: Callable[[], Awaitable[object]]) -> float:
            started = time.thread_time()  # the node's thread only
            for _ in range(CALLS):
                await fn()
            return (time.thread_time() - started) / CALLS * 1e6

        report_us = await agent.call(per_call, lambda: node.neighbours(ALL_TOPICS))
        sweep_us = await agent.call(per_call, node.identify_neighbours)
        wire = [x.to_wire() for x in await agent.neighbours(ALL_TOPICS)]
        return report_us, sweep_us, len(json.dumps(wire, separators=(",", ":")))
    finally:
        for p in peers:
            await p.stop()
        await agent.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--neighbours", type=int, nargs="+", default=[4, 8, 32])
    args = parser.parse_args()
    logging.getLogger("meshcommon.p2p.node").setLevel(logging.ERROR)  # "open mesh", per node
    print("| neighbours | report µs | identify sweep µs | bytes per broadcast | % core |")
    print("|---|---|---|---|---|")
    for n in args.neighbours:
        runs = [asyncio.run(run_once(n)) for _ in range(args.runs)]
        report = statistics.median(r[0] for r in runs)
        sweep = statistics.median(r[1] for r in runs)
        size = int(statistics.median(r[2] for r in runs))
        pct = (report + sweep) / (PERIOD_S * 1e6) * 100
        print(f"| {n} | {report:.0f} | {sweep:.0f} | {size} | {pct:.5f} |", flush=True)


if __name__ == "__main__":
    main()
