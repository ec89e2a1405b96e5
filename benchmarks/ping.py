"""libp2p ping RTT between two idle local peers, as a service sees it (asyncio -> trio)."""

from __future__ import annotations

import json
import statistics

from benchmarks.procs import Interpreter, spawned


def run_once(interp: Interpreter, count: int = 50) -> tuple[float, float]:
    """Medians in milliseconds over ``count`` pings after a warm-up: the round trip the
    node reports, and the whole call (stream opening included) as the monitor makes it."""
    with spawned(
        interp.probe("ping", "--host", "127.0.96.1", "--count", str(count)), pipes=True
    ) as p:
        assert p.stdout is not None
        line = p.stdout.readline()
        p.wait(120)
    answer = json.loads(line)
    return float(statistics.median(answer["rtt_ms"])), float(statistics.median(answer["call_ms"]))
