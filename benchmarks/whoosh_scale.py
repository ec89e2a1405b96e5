"""WHOOSH at scale: N fake agents, long-polling clients, and what one change of the list
costs with the whole list and with per-agent views.

One process serves N signed health answers on loopback addresses (``fake_fleet.py``);
WHOOSH discovers them statically (``WHOOSH_UNSIGNED_HEALTH`` stays ``reject``: every answer
carries a valid signed peer record). Then, for each mode:

* ``full``: clients long-poll ``GET /api/v1/bootstrap-peers`` (what every agent did). Each
  change sends every client the whole list, so the figure per change is exactly N times
  the list; ``FULL_CLIENTS`` clients are enough to measure it (N of them at N = 5,000 would
  be 8 GB per change).
* ``view``: N clients, one per agent with that agent's peer ID, long-poll
  ``GET /api/v1/bootstrap-peers/view?peer_id=…&k=K``, as the agents do now.

A change is one agent restarted with a new key (one entry leaves, one joins: a step of a
rolling update) followed by a discovery round (``POST /api/v1/discovery/refresh``). Per
change: the round's time, WHOOSH's CPU from the change until the clients are served, and
the bytes of the answers it served (status line, headers and body, as read off the
socket). A round without a change gives the CPU of the round alone.

python -m benchmarks.whoosh_scale --n 100,1000      # quick
python -m benchmarks --only whoosh                  # in the benchmark table
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import IO, Any

import httpx

from benchmarks.procs import TOOLS, Interpreter, cpu_seconds, spawned

FLEET = str(Path(__file__).with_name("fake_fleet.py"))
AGENT_NET = "127.61"  # agents at 127.61.0.1 ... (250 per /24)
WHOOSH_IP = "127.59.0.2"
PORT = 8080
TOKEN = "bench-admin-token"
SIZES = (100, 1000, 5000)
FULL_CLIENTS = 200
VIEW_K = 8
CHANGES = 3
WAIT = 30  # Prefer: wait=N of every long poll (WHOOSH's maximum)
QUIET_S = 0.7  # view mode: the change is served when no answer came for this long


@dataclass
class Client:
    path: str
    etag: str | None = None
    answers: int = 0


@dataclass
class Tally:
    """Answers with a body (200) and their bytes; 304s apart."""

    bytes_200: int = 0
    answers_200: int = 0
    answers_304: int = 0
    last_200_at: float = 0.0
    woken: set[int] = field(default_factory=set)

    def reset(self) -> None:
        self.bytes_200 = self.answers_200 = self.answers_304 = 0
        self.woken = set()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, str | None, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, etag = 0, None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "etag":
            etag = value.strip()
    if length:
        await reader.readexactly(length)
    return status, etag, len(head) + length


async def _poll(
    n: int, client: Client, tally: Tally, first: asyncio.Semaphore, ready: asyncio.Event
) -> None:
    """One long-polling client on its own keep-alive connection, forever."""
    async with first:  # connect and fetch a few at a time (WHOOSH's accept backlog)
        reader, writer = await asyncio.open_connection(WHOOSH_IP, PORT, limit=1 << 16)
        writer.write(f"GET {client.path} HTTP/1.1\r\nHost: whoosh\r\n\r\n".encode())
        status, client.etag, _ = await _read_answer(reader)
        assert status == 200, f"{client.path}: HTTP {status}"
    ready.set()
    while True:
        writer.write(
            f"GET {client.path} HTTP/1.1\r\nHost: whoosh\r\nIf-None-Match: {client.etag}\r\n"
            f"Prefer: wait={WAIT}\r\n\r\n".encode()
        )
        status, etag, size = await _read_answer(reader)
        if status == 304:
            tally.answers_304 += 1
            continue
        client.etag, client.answers = etag, client.answers + 1
        tally.bytes_200 += size
        tally.answers_200 += 1
        tally.last_200_at = time.monotonic()
        tally.woken.add(n)


async def _until(condition: Callable[[], bool], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("clients not served")
        await asyncio.sleep(0.01)


@contextmanager
def _fleet(n: int) -> Iterator[Popen[bytes]]:
    with spawned([TOOLS.python, FLEET, "--n", str(n), "--net", AGENT_NET], pipes=True) as p:
        assert p.stdout is not None
        line = p.stdout.readline().decode().strip()
        if line != "ready":
            raise RuntimeError(f"fake fleet did not start: {line!r}")
        yield p


def _swap(fleet: Popen[bytes], i: int) -> str:
    stdin, stdout = fleet.stdin, fleet.stdout
    assert stdin is not None and stdout is not None
    _send(stdin, f"swap {i}\n")
    return stdout.readline().decode().split()[-1]


def _send(pipe: IO[bytes], text: str) -> None:
    pipe.write(text.encode())
    pipe.flush()


def _whoosh_env(n: int) -> dict[str, str]:
    from benchmarks.fake_fleet import address

    return {
        "WHOOSH_HOST": WHOOSH_IP,
        "WHOOSH_PORT": str(PORT),
        "WHOOSH_DISCOVERY": "static",
        # host:port without a scheme: 19 characters an agent, within one variable's limit.
        "WHOOSH_STATIC_AGENTS": ",".join(f"{address(AGENT_NET, i)}:{PORT}" for i in range(n)),
        "WHOOSH_ALLOW_LOOPBACK": "true",
        "WHOOSH_POLL_INTERVAL_S": "3600",  # rounds only when the benchmark asks
        "WHOOSH_ADMIN_TOKEN": TOKEN,
        "WHOOSH_LOG_LEVEL": "WARNING",
        "WHOOSH_LABELS_SYNC_ON_START": "false",
    }


def _listed(http: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = http.get("/api/v1/bootstrap-peers").json()
    return body


def _refresh(http: httpx.Client) -> float:
    started = time.monotonic()
    resp = http.post("/api/v1/discovery/refresh", headers={"Authorization": f"Bearer {TOKEN}"})
    resp.raise_for_status()
    return time.monotonic() - started


async def _measure_mode(
    mode: str, n: int, whoosh_pid: int, fleet: Popen[bytes], http: httpx.Client, swaps: list[int]
) -> dict[str, float]:
    listed = _listed(http)
    ids = [p["peer_id"] for p in listed["bootstrap_peers"]]
    if mode == "full":
        clients = [Client("/api/v1/bootstrap-peers") for _ in range(min(n, FULL_CLIENTS))]
    else:
        clients = [Client(f"/api/v1/bootstrap-peers/view?peer_id={pid}&k={VIEW_K}") for pid in ids]
    tally = Tally()
    first, ready = asyncio.Semaphore(64), asyncio.Event()
    tasks = [asyncio.create_task(_poll(i, c, tally, first, ready)) for i, c in enumerate(clients)]
    loop = asyncio.get_running_loop()
    try:
        t0 = time.monotonic()
        while sum(1 for c in clients if c.etag) < len(clients):
            await asyncio.sleep(0.05)
            if any(t.done() for t in tasks):
                next(t for t in tasks if t.done()).result()  # raises what failed
            if time.monotonic() - t0 > 120:
                raise TimeoutError("clients did not all get their first answer")
        await asyncio.sleep(0.5)
        rounds, cpus, sent, woken, served_s = [], [], [], [], []
        for i in swaps:
            tally.reset()
            before = cpu_seconds([whoosh_pid])[whoosh_pid]
            started = time.monotonic()
            await loop.run_in_executor(None, _swap, fleet, i)
            rounds.append(await loop.run_in_executor(None, _refresh, http))
            if mode == "full":  # every client gets the new list
                await _until(lambda: tally.answers_200 >= len(clients), 60)
            else:  # the clients whose view changed: answered at once, then quiet
                end_of_round = started + rounds[-1]
                await _until(
                    lambda e=end_of_round: time.monotonic() - max(tally.last_200_at, e) >= QUIET_S,
                    60,
                )
            served_s.append(max(tally.last_200_at, started + rounds[-1]) - started)
            cpus.append(cpu_seconds([whoosh_pid])[whoosh_pid] - before)
            # Bytes per change for N agents: the full list goes to every agent (N times what
            # one client got); with views, N clients were measured.
            per_client = tally.bytes_200 / len(clients)
            sent.append(per_client * n if mode == "full" else tally.bytes_200)
            woken.append(n if mode == "full" else len(tally.woken))
        return {
            "round_s": statistics.median(rounds),
            "served_s": statistics.median(served_s),
            "cpu_s": statistics.median(cpus),
            "bytes": statistics.median(sent),
            "woken": statistics.median(woken),
            "clients": len(clients),
            "answer_bytes": (tally.bytes_200 / tally.answers_200) if tally.answers_200 else 0.0,
        }
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def run_once(interp: Interpreter, n: int, changes: int = CHANGES) -> dict[str, dict[str, float]]:
    """Both modes against one WHOOSH and one fleet of ``n`` fake agents."""
    rng = random.Random(n)
    swaps = rng.sample(range(n), min(n, 2 * changes))
    out: dict[str, dict[str, float]] = {}
    with (
        _fleet(n) as fleet,
        spawned(interp.module("whoosh"), _whoosh_env(n)) as whoosh,
        httpx.Client(base_url=f"http://{WHOOSH_IP}:{PORT}", timeout=120, trust_env=False) as http,
    ):
        started = time.monotonic()
        while True:
            try:
                if _listed(http)["count"] == n:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() - started > 180:
                raise TimeoutError(f"WHOOSH did not list {n}/{n}")
            time.sleep(0.1)
        listed_s = time.monotonic() - started
        list_bytes = len(http.get("/api/v1/bootstrap-peers").content)
        # The round alone: a refresh that changes nothing (and would wake no client).
        before = cpu_seconds([whoosh.pid])[whoosh.pid]
        _refresh(http)
        round_cpu = cpu_seconds([whoosh.pid])[whoosh.pid] - before
        for mode, picks in (("full", swaps[:changes]), ("view", swaps[changes:])):
            out[mode] = asyncio.run(_measure_mode(mode, n, whoosh.pid, fleet, http, picks))
            out[mode].update(listed_s=listed_s, list_bytes=list_bytes, round_cpu_s=round_cpu)
    return out


def render(results: dict[int, dict[str, dict[str, float]]]) -> str:
    header = (
        "| N | mode | clients | listed N/N | round | WHOOSH CPU per change (round alone) "
        "| served after | clients woken | bytes per change | per answer |"
    )
    lines = [header, "|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|"]
    for n, modes in results.items():
        for mode, r in modes.items():
            lines.append(
                f"| {n:,} | {mode} | {r['clients']:,.0f} | {r['listed_s']:.1f} s "
                f"| {r['round_s']:.2f} s | {r['cpu_s']:.2f} s ({r['round_cpu_s']:.2f} s) "
                f"| {r['served_s']:.2f} s | {r['woken']:,.0f} | {_size(r['bytes'])} "
                f"| {_size(r['answer_bytes'])} |"
            )
    return "\n".join(lines)


def _size(b: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.1f} {unit}"
    return f"{b:.0f} B"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.whoosh_scale", description=__doc__)
    p.add_argument("--n", default=",".join(str(s) for s in SIZES))
    p.add_argument("--changes", type=int, default=CHANGES)
    p.add_argument("--python", default=sys.executable)
    args = p.parse_args(argv)
    results = {}
    for n in (int(x) for x in args.n.split(",")):
        t0 = time.monotonic()
        results[n] = run_once(Interpreter(args.python), n, args.changes)
        print(f"  N = {n}: {time.monotonic() - t0:.0f} s", flush=True)
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
