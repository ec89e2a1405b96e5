"""``python latency_probe.py URL``: GET URL every 20 ms until SIGTERM (or 20,000 answers),
then print the latencies (ms) as one JSON document. Run as its own process so that the
test process's threads (fake agents, libp2p nodes) do not add to what it measures."""

from __future__ import annotations

import json
import signal
import sys
import time

import httpx


def main(url: str) -> None:
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    latencies, errors = [], 0
    with httpx.Client(timeout=5) as client:
        while not stop and len(latencies) < 20_000:
            started = time.perf_counter()
            try:
                client.get(url).raise_for_status()
            except httpx.HTTPError:
                errors += 1
            else:
                latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    json.dump({"latencies_ms": latencies, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
