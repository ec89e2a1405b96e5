"""N light fake agents in one process: one listening socket per loopback address, each
answering every GET with a signed health answer, as a real agent's ``/api/health`` would
(WHOOSH lists only addresses a valid signed peer record proves, so each fake has an
Ed25519 key, derived from its index: the same fleet every run, no key file needed).

python benchmarks/fake_fleet.py --n 1000 --net 127.61 --port 8080

Prints ``ready`` once every address listens. Commands on stdin, one per line:
``swap I`` gives agent I a new key (a restarted agent: a new peer ID at the same address,
one entry leaves the list and one joins) and prints ``swapped I <new peer id>``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import sys
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meshcommon.peer_record import peer_id_of_private_key, seal_peer_record

HEAD_LIMIT = 16 * 1024


def address(net: str, i: int) -> str:
    """Agent ``i``'s IPv4 address in ``net`` (two octets): 250 per /24, from .1."""
    return f"{net}.{i // 250}.{i % 250 + 1}"


def key_of(i: int, generation: int) -> Ed25519PrivateKey:
    seed = hashlib.sha256(f"chorus-bench-agent/{i}/{generation}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def health_answer(ip: str, port: int, key: Ed25519PrivateKey, name: str) -> bytes:
    peer_id = peer_id_of_private_key(key)
    transport = f"/ip4/{ip}/tcp/9000"
    record = seal_peer_record(key, [transport], time.time_ns())
    body = json.dumps(
        {
            "peer_id": peer_id,
            "multiaddrs": [f"{transport}/p2p/{peer_id}"],
            "name": name,
            "connected_peers": 0,
            "gossipsub_topics": ["CHORUS/coordination/v1"],
            "peer_record": base64.b64encode(record).decode(),
        }
    ).encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


class Fleet:
    def __init__(self, n: int, net: str, port: int) -> None:
        self.n, self.net, self.port = n, net, port
        self.generation = [0] * n
        self.answers: dict[str, bytes] = {}
        self.peer_ids: list[str] = [""] * n
        for i in range(n):
            self._make(i)

    def _make(self, i: int) -> None:
        ip = address(self.net, i)
        key = key_of(i, self.generation[i])
        self.peer_ids[i] = peer_id_of_private_key(key)
        self.answers[ip] = health_answer(ip, self.port, key, f"fake-{i:05d}")

    def swap(self, i: int) -> str:
        self.generation[i] += 1
        self._make(i)
        return self.peer_ids[i]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            ip = writer.get_extra_info("sockname")[0]
            writer.write(self.answers[ip])
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()


async def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--net", default="127.61", help="first two octets of the addresses")
    p.add_argument("--port", type=int, default=8080)
    args = p.parse_args(argv)
    fleet = Fleet(args.n, args.net, args.port)
    hosts = [address(args.net, i) for i in range(args.n)]
    server = await asyncio.start_server(
        fleet.handle, host=hosts, port=args.port, limit=HEAD_LIMIT, backlog=1024
    )
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with server:
        while line := await reader.readline():
            cmd, _, arg = line.decode().strip().partition(" ")
            if cmd == "swap":
                i = int(arg)
                print(f"swapped {i} {fleet.swap(i)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
