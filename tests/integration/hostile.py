"""Hostile peers for process tests and the soak, all at once: agents whose /api/health is
huge, slow, of the wrong types or lists thousands of addresses; two impostors claiming a
real agent's peer ID without its key (one with a libp2p host of its own holding another
key and no signed record, one replaying the real agent's health answer, record included);
an agent whose libp2p addresses are black holes; and a gossip sender publishing garbage."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from meshcommon import topics
from meshcommon.p2p import MeshNode, NodeConfig
from meshcommon.p2p.identity import load_or_create_key_pair, peer_id_of
from meshcommon.swarm_key import read_swarm_key, write_swarm_key
from meshcommon.waiting import wait_until
from meshlocal import LocalMesh, MeshLayout

from .fake_agents import FAKE_KEY, FAKE_PEER_ID, GetHandler, serve_get_handlers, signed_health

# What WHOOSH must call each misbehaving health endpoint (its /api/v1/agents reason).
EXPECTED_REASONS = {
    "many_addrs": "too_many_multiaddrs",
    "huge_body": "oversized_health",
    "slow": "timeout",
    "wrong_types": "invalid_health",
    # Claims to the victim's peer ID that no signed record proves (never listed).
    "impostor": "record_missing",
    "replay": "record_replayed",
}
# Their reason under WHOOSH's /api/v1/agents "impostors".
IMPOSTOR_REASONS = {"impostor": "missing", "replay": "replayed"}
HUGE_BODY_BYTES = 20 * 1024 * 1024


def mesh_node_config(mesh: LocalMesh | None, host: str, port: int = 9000) -> NodeConfig:
    """The libp2p node configuration a foreign test peer of ``mesh`` needs to be a member:
    where it listens and the run's swarm.key (a closed mesh refuses a node without it). A
    bare node otherwise, without validation: it sends what it is told."""
    closed = mesh is not None and mesh.private_network
    keys = (read_swarm_key(mesh.swarm_key_path).key,) if closed and mesh else ()
    return NodeConfig(listen_host=host, port=port, pnet_keys=keys)


class BackgroundNode:
    """A libp2p node (MeshNode) in its own trio thread, driven from synchronous test code."""

    def __init__(self, host: str, port: int = 9000, config: NodeConfig | None = None) -> None:
        self.node = MeshNode(config or NodeConfig(listen_host=host, port=port))
        self.addr = f"/ip4/{host}/tcp/{port}/p2p/{self.node.peer_id}"
        self._cm: contextlib.AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._serving: Any = None

    @property
    def peer_id(self) -> str:
        return self.node.peer_id

    def start(self) -> None:
        self._cm = start_blocking_portal(backend="trio")
        self._portal = self._cm.__enter__()
        self._serving, _ = self._portal.start_task(self.node.serve)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._portal is not None
        return self._portal.call(fn, *args)

    def ignore_prune_from(self, peer_id: str) -> None:
        """Publish everything to ``peer_id`` whatever it says, as an attacker does: it
        becomes a GossipSub direct peer of this node (every publish goes to the direct
        peers, which are never grafted, so their PRUNE changes nothing). A polite node
        stops: the first hop prunes a peer whose score went negative at its next
        heartbeat (py-libp2p's ``_consider_peer_replacement``, with a mesh of D), about a
        second after its first invalid message, and the polite node then publishes to no
        one, long before it has sent enough to be graylisted."""
        self.call(self._add_direct_peer, peer_id)

    async def _add_direct_peer(self, peer_id: str) -> None:
        # libp2p only after meshcommon.p2p (its import trims libp2p's: lean)
        from libp2p.peer.id import ID
        from libp2p.peer.peerinfo import PeerInfo

        gossipsub = self.node._gossipsub
        assert gossipsub is not None, "not serving"
        peer = ID.from_base58(peer_id)
        gossipsub.direct_peers[peer] = PeerInfo(peer, [])

    def stop(self) -> None:
        if self._cm is not None:
            self._serving.cancel()
            with contextlib.suppress(Exception):
                self._cm.__exit__(None, None, None)
            self._cm = None


def _health(peer_id: str, multiaddrs: list[str], name: str) -> bytes:
    doc = {"peer_id": peer_id, "multiaddrs": multiaddrs, "name": name, "gossipsub_topics": []}
    return json.dumps(doc).encode()


@dataclass
class HostilePeers:
    urls: dict[str, str]  # behaviour -> health base URL
    impostor: BackgroundNode
    black_hole_peer_id: str
    black_hole_ports: list[int] = field(default_factory=list)


class _BlackHoles:
    """TCP listeners that accept and never say a word: every handshake with them hangs."""

    def __init__(self, host: str, count: int) -> None:
        self.socks = []
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            s.listen(128)
            s.settimeout(0.2)
            self.socks.append(s)
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            for s in self.socks:
                with contextlib.suppress(OSError):
                    conn, _ = s.accept()
                    self.held.append(conn)
            # A bounded number of held connections: old ones are dropped (still silent).
            while len(self.held) > 512:
                self.held.pop(0).close()

    @property
    def ports(self) -> list[int]:
        return [s.getsockname()[1] for s in self.socks]

    def close(self) -> None:
        self.stop.set()
        for s in self.held + self.socks:
            s.close()


@contextlib.contextmanager
def hostile_peers(
    ip_prefix: str,
    victim_peer_id: str,
    victim_url: str | None = None,
    pnet_key_file: Path | None = None,
) -> Iterator[HostilePeers]:
    """Hostile agents on ``<ip_prefix>.1...``: every behaviour of ``EXPECTED_REASONS``, an
    impostor claiming ``victim_peer_id`` (its own libp2p host on ``<ip_prefix>.10``, with
    the mesh's swarm.key: an insider whose handshake must give it away; no signed record),
    a replay of the health answer at ``victim_url`` (the victim's record included), and a
    black hole (a valid signed answer whose 32 libp2p addresses, on its own address
    ``<ip_prefix>.6``, hang)."""
    keys = (read_swarm_key(pnet_key_file).key,) if pnet_key_file else ()
    host = f"{ip_prefix}.10"
    impostor = BackgroundNode(host, config=NodeConfig(listen_host=host, pnet_keys=keys))
    impostor.start()
    holes = _BlackHoles(f"{ip_prefix}.6", 32)  # the black hole's HTTP address (6th below)
    black_hole_id = FAKE_PEER_ID
    hole_addrs = [f"/ip4/{ip_prefix}.6/tcp/{p}/p2p/{black_hole_id}" for p in holes.ports]
    impostor_addr = f"/ip4/{ip_prefix}.10/tcp/9000/p2p/{victim_peer_id}"
    # 600 addresses fit the 64 KiB health budget (5,000 would be refused as oversized).
    many = [f"/ip4/{ip_prefix}.99/tcp/{10000 + i}/p2p/{FAKE_PEER_ID}" for i in range(600)]
    stop = threading.Event()

    def respond(handler: BaseHTTPRequestHandler, body: bytes, length: bool = True) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if length:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def huge(handler: BaseHTTPRequestHandler) -> None:
        # No Content-Length: the body has to be read to learn its size; 20 MB of it.
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        chunk = b" " * 65536
        with contextlib.suppress(OSError):
            handler.wfile.write(b'{"peer_id": "' + FAKE_PEER_ID.encode() + b'", "pad": "')
            for _ in range(HUGE_BODY_BYTES // len(chunk)):
                handler.wfile.write(chunk)

    def slow(handler: BaseHTTPRequestHandler) -> None:
        # A valid answer, one byte every half second: never done within WHOOSH's deadline.
        body = _health(FAKE_PEER_ID, [], "slow")
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        with contextlib.suppress(OSError):
            for byte in body:
                if stop.wait(0.5):
                    return
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()

    def replay(handler: BaseHTTPRequestHandler) -> None:
        # The real agent's answer, byte for byte, fetched afresh: a valid record, served
        # from another address than the ones it signs.
        try:
            body = httpx.get(f"{victim_url}/api/health", timeout=2).content
        except httpx.HTTPError:
            handler.send_response(503)
            handler.end_headers()
            return
        respond(handler, body)

    behaviours: dict[str, GetHandler] = {
        "many_addrs": lambda h: respond(h, _health(FAKE_PEER_ID, many, "many-addrs")),
        "huge_body": huge,
        "slow": slow,
        "wrong_types": lambda h: respond(
            h, b'{"peer_id": 12345, "multiaddrs": "not a list", "connected_peers": "many"}'
        ),
        "impostor": lambda h: respond(h, _health(victim_peer_id, [impostor_addr], "impostor")),
        "black_hole": lambda h: respond(h, signed_health(FAKE_KEY, hole_addrs, "black-hole")),
        "replay": replay,
    }
    try:
        with serve_get_handlers(ip_prefix, behaviours) as urls:
            try:
                yield HostilePeers(urls, impostor, black_hole_id, holes.ports)
            finally:
                stop.set()  # the trickling answers end before their servers shut down
    finally:
        holes.close()
        impostor.stop()


@contextlib.contextmanager
def mesh_with_hostile_peers(
    layout: MeshLayout, run_dir: Path, hostile_net: str, python: str | None = None
) -> Iterator[tuple[LocalMesh, HostilePeers, str]]:
    """The mesh of ``layout`` (its services run by ``python``, default this interpreter)
    with WHOOSH also polling every hostile agent (on ``hostile_net``); the impostor claims
    agent-01's peer ID. Yields the mesh, the hostile peers and that peer ID."""
    # agent-01's identity exists before it starts, so that the impostor can claim it.
    victim = peer_id_of(load_or_create_key_pair(str(run_dir / "agent-01.key")))
    # The run's swarm.key too (LocalMesh keeps one it finds), for the impostor.
    swarm_key = write_swarm_key(run_dir / "swarm.key")
    with hostile_peers(hostile_net, victim, layout.agent_url(1), swarm_key) as bad:
        good = [layout.agent_url(i) for i in range(1, layout.agents + 1)]
        mesh = LocalMesh(
            layout,
            run_dir=run_dir,
            python=python or sys.executable,
            extra_env={
                "whoosh": {
                    "WHOOSH_STATIC_AGENTS": ",".join(good + list(bad.urls.values())),
                    "WHOOSH_HEALTH_TIMEOUT_S": "1",
                    "WHOOSH_HEALTH_ATTEMPTS": "2",
                },
            },
        )
        try:
            mesh.start()
            yield mesh, bad, victim
        finally:
            mesh.stop()


class GarbageSender:
    """A gossip peer that connects to the given peers and publishes, every ``period_s``:
    invalid JSON, an oversized payload, and an availability message claiming 600
    multiaddrs (signed by itself and within the message budget, so agents read it and must
    refuse its addresses); to those peers, whether they prune it or not."""

    def __init__(self, host: str, period_s: float = 1.0, config: NodeConfig | None = None) -> None:
        self.node = BackgroundNode(host, config=config)
        self.period_s = period_s
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._host = host

    def start(self, dial: dict[str, list[str]]) -> None:
        """``dial``: peer ID -> multiaddrs of the peers to connect to."""
        self.node.start()
        for peer_id, addrs in dial.items():
            self.node.call(self.node.node.connect, peer_id, addrs)
            self.node.ignore_prune_from(peer_id)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = self.node.peer_id
        flood = [f"/ip4/{self._host}/tcp/{20000 + i}/p2p/{me}" for i in range(600)]
        availability = {
            "type": "availability",
            "node_id": me,
            "available_for_work": True,
            "current_tasks": 0,
            "max_tasks": 1,
            "last_activity": "2026-01-01T00:00:00Z",
            "status": "available",
            "multiaddrs": flood,
        }
        payloads = [
            (topics.META_DISCUSSION, b"{this is not json"),
            (topics.CONTEXT_FEEDBACK, b'{"type":"x","pad":"' + b"x" * 100_000 + b'"}'),
            (topics.COORDINATION, json.dumps(availability).encode()),
        ]
        while not self._stop.wait(self.period_s):
            for topic, data in payloads:
                with contextlib.suppress(Exception):
                    self.node.call(self.node.node.publish, topic, data)
                    self.sent += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.node.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LatencyProbe:
    """GET ``url`` every 20 ms from a process of its own (``latency_probe.py``) while the
    ``with`` block runs (or until ``stop``); then ``latencies_ms`` and ``errors``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies_ms: list[float] = []
        self.errors = 0
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> LatencyProbe:
        script = Path(__file__).with_name("latency_probe.py")
        self._proc = subprocess.Popen(
            [sys.executable, str(script), self.url], stdout=subprocess.PIPE, text=True
        )
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop probing and read the latencies (again: nothing more)."""
        assert self._proc is not None
        if self._proc.returncode is not None:
            return
        self._proc.terminate()
        try:
            out, _ = self._proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, _ = self._proc.communicate()
        if out:
            doc = json.loads(out)
            self.latencies_ms, self.errors = doc["latencies_ms"], doc["errors"]


@contextlib.contextmanager
def floor_server(host: str) -> Iterator[str]:
    """``floor_server.py`` on ``host`` (a free port): yields its URL."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    script = Path(__file__).with_name("floor_server.py")
    proc = subprocess.Popen([sys.executable, str(script), host, str(port)])
    url = f"http://{host}:{port}/"

    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"floor server exited with {proc.returncode}")
        with socket.create_connection((host, port), 0.2):
            return True

    try:
        wait_until(listening, within_s=30, what="the floor server")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _set_cpus(pid: int, cpus: set[int]) -> None:
    """Every thread of process ``pid`` onto ``cpus`` (threads started later inherit it)."""
    with contextlib.suppress(FileNotFoundError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(tid), cpus)


@contextlib.contextmanager
def cpu_of_its_own(own: list[int], others: list[int]) -> Iterator[None]:
    """Processes ``own`` on the last CPU, ``others`` (and this process) on the rest, as
    WHOOSH is in a deployment, where it is a container of its own and does not share its
    CPU with ten agents; all back on every CPU afterwards."""
    every = os.sched_getaffinity(0)
    last = {max(every)}
    rest = every - last
    try:
        for pid in own:
            _set_cpus(pid, last)
        for pid in [*others, os.getpid()]:
            _set_cpus(pid, rest)
        yield
    finally:
        for pid in [*own, *others, os.getpid()]:
            _set_cpus(pid, every)
