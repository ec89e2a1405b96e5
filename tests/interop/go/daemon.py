"""The go-libp2p daemon (``p2pd``) as a test peer, driven over its control socket.

The control protocol: one unix-socket connection per request, a varint-length-delimited
protobuf ``Request`` in, a ``Response`` out; a pubsub SUBSCRIBE keeps its connection and
streams ``PSMessage``s on it. The messages are hand-encoded here (a handful of fields; no
generated code to keep in step): field numbers and types are those of ``p2pd.proto`` as
shipped in the same hivemind 1.1.12 wheel (``hivemind/proto/p2pd.proto``, "Originally taken
from https://github.com/mhchia/py-libp2p-daemon-bindings", MIT), i.e. go-libp2p-daemon's
``pb/p2pd.proto``. Peer IDs and multiaddrs travel in their binary forms.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from libp2p.peer.id import ID
from multiaddr import Multiaddr

# Request.Type, PSRequest.Type, DHTRequest.Type, Response.Type, DHTResponse.Type
IDENTIFY, CONNECT, DHT, LIST_PEERS, PUBSUB = 0, 1, 4, 5, 8
PS_GET_TOPICS, PS_LIST_PEERS, PS_PUBLISH, PS_SUBSCRIBE = 0, 1, 2, 3
DHT_FIND_PEER, DHT_GET_CLOSEST_PEERS = 0, 3
OK, ERROR = 0, 1
DHT_BEGIN, DHT_VALUE, DHT_END = 0, 1, 2

MAX_FRAME = 4 << 20  # the daemon's own default message budget (-persistentConnMaxMsgSize)

Fields = dict[int, list[int | bytes]]


# -- protobuf wire format (varints and length-delimited fields are all we need) ---------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def encode(*fields: tuple[int, int | bytes | str]) -> bytes:
    """A message from ``(field number, value)`` pairs: ints as varints, the rest bytes."""
    out = bytearray()
    for number, value in fields:
        if isinstance(value, int):
            out += _varint(number << 3) + _varint(value)
        else:
            data = value.encode() if isinstance(value, str) else value
            out += _varint(number << 3 | 2) + _varint(len(data)) + data
    return bytes(out)


def decode(buf: bytes) -> Fields:
    """Field number -> its values (varints as ints, length-delimited as bytes)."""
    fields: Fields = {}
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            fields.setdefault(key >> 3, []).append(value)
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            fields.setdefault(key >> 3, []).append(buf[pos : pos + size])
            pos += size
        else:
            raise ValueError(f"wire type {wire} not expected from p2pd")
    return fields


def _one(fields: Fields, number: int, default: int | bytes = b"") -> int | bytes:
    values = fields.get(number)
    return values[0] if values else default


def _bytes(fields: Fields, number: int) -> bytes:
    value = _one(fields, number)
    assert isinstance(value, bytes)
    return value


class DaemonError(RuntimeError):
    pass


class _Conn:
    """One control connection: delimited frames out and in, each read with a deadline."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        self.sock.connect(str(path))
        self._buf = b""

    def send(self, message: bytes) -> None:
        self.sock.sendall(_varint(len(message)) + message)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("p2pd did not answer in time")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("p2pd closed the control connection")
        self._buf += chunk

    def recv(self, timeout_s: float) -> Fields:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                size, start = _read_varint(self._buf, 0)
            except ValueError:
                self._fill(deadline)
                continue
            if size > MAX_FRAME:
                raise DaemonError(f"p2pd frame of {size} bytes")
            if len(self._buf) - start >= size:
                frame, self._buf = self._buf[start : start + size], self._buf[start + size :]
                return decode(frame)
            self._fill(deadline)

    def close(self) -> None:
        self.sock.close()


@dataclass
class PubsubMessage:
    sender: str  # base58 peer ID of the origin (PSMessage.from)
    data: bytes
    topics: list[str]


class Subscription:
    """A SUBSCRIBE's open connection, drained by a thread as the daemon streams the topic's
    messages (a reader that falls behind would make go-libp2p-pubsub drop messages for a
    slow subscriber: its queue holds 32)."""

    def __init__(self, conn: _Conn, topic: str) -> None:
        self.conn, self.topic = conn, topic
        self._received: list[PubsubMessage] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=f"p2pd-sub-{topic}")
        self._thread.daemon = True
        self._thread.start()

    def _drain(self) -> None:
        while not self._closed.is_set():
            try:
                f = self.conn.recv(1.0)
            except TimeoutError:
                continue
            except (OSError, ValueError, DaemonError) as exc:
                if not self._closed.is_set():
                    self.error = exc
                return
            message = PubsubMessage(
                sender=ID(_bytes(f, 1)).to_base58() if f.get(1) else "",
                data=_bytes(f, 2),
                topics=[t.decode() for t in f.get(4, []) if isinstance(t, bytes)],
            )
            with self._lock:
                self._received.append(message)

    def poll(self) -> list[PubsubMessage]:
        """Every message received so far (a copy)."""
        if self.error is not None:
            raise DaemonError(f"subscription to {self.topic} failed: {self.error!r}")
        with self._lock:
            return list(self._received)

    def close(self) -> None:
        self._closed.set()
        self.conn.close()
        self._thread.join(5)


@dataclass
class PeerInfo:
    peer_id: str
    addrs: list[str]


def _peer_info(raw: bytes) -> PeerInfo:
    f = decode(raw)
    addrs = [str(Multiaddr(a)) for a in f.get(2, []) if isinstance(a, bytes)]
    return PeerInfo(ID(_bytes(f, 1)).to_base58(), addrs)


class GoPeer:
    """A ``p2pd`` process on loopback (TCP, Noise/TLS, yamux, GossipSub; optionally the
    DHT), in its own process group, killed by PID on ``close``."""

    def __init__(
        self,
        binary: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        dht: bool = False,
        extra_args: tuple[str, ...] = (),
        timeout_s: float = 30,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="p2pd-")
        self.socket_path = Path(self._dir.name) / "control.sock"
        self.log_path = Path(self._dir.name) / "p2pd.log"
        self._subs: list[Subscription] = []
        args = [
            str(binary),
            f"-listen=/unix{self.socket_path}",
            f"-hostAddrs=/ip4/{host}/tcp/{port}",
            "-pubsub",
            "-pubsubRouter=gossipsub",
            "-relay=false",
            "-autonat=false",
            "-natPortMap=false",
            "-quic=false",
            *(["-dht"] if dht else []),
            *extra_args,
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + timeout_s
            while not self.socket_path.exists():
                if self.proc.poll() is not None:
                    raise DaemonError(f"p2pd exited ({self.proc.returncode}): {self.log()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"p2pd made no control socket in {timeout_s:.0f}s")
                time.sleep(0.05)
            self.peer_id, self.addrs = self.identify()
        except BaseException:
            self.close()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    @property
    def addr(self) -> str:
        """The daemon's TCP multiaddr with its /p2p/ peer ID."""
        tcp = next(a for a in self.addrs if "/tcp/" in a)
        return f"{tcp}/p2p/{self.peer_id}"

    # -- requests ---------------------------------------------------------------------
    def _request(self, request: bytes, timeout_s: float = 30) -> tuple[Fields, _Conn]:
        conn = _Conn(self.socket_path, timeout_s)
        try:
            conn.send(request)
            response = conn.recv(timeout_s)
        except BaseException:
            conn.close()
            raise
        if _one(response, 1) != OK:
            conn.close()
            error = decode(_bytes(response, 2)) if response.get(2) else {}
            raise DaemonError(_bytes(error, 1).decode(errors="replace") if error else "ERROR")
        return response, conn

    def _call(self, request: bytes, timeout_s: float = 30) -> Fields:
        response, conn = self._request(request, timeout_s)
        conn.close()
        return response

    def identify(self) -> tuple[str, list[str]]:
        f = decode(_bytes(self._call(encode((1, IDENTIFY))), 4))
        addrs = [str(Multiaddr(a)) for a in f.get(2, []) if isinstance(a, bytes)]
        return ID(_bytes(f, 1)).to_base58(), addrs

    def connect(self, multiaddr: str, timeout_s: int = 20) -> str:
        """Dials ``.../p2p/<peer ID>``; returns that peer ID once connected."""
        ma = Multiaddr(multiaddr)
        peer = ma.value_for_protocol("p2p")
        transport = ma.decapsulate(Multiaddr(f"/p2p/{peer}"))
        connect = encode(
            (1, ID.from_base58(peer).to_bytes()), (2, transport.to_bytes()), (3, timeout_s)
        )
        self._call(encode((1, CONNECT), (2, connect)), timeout_s + 5)
        return str(peer)

    def peers(self) -> list[PeerInfo]:
        """LIST_PEERS: the peers the daemon is connected to."""
        response = self._call(encode((1, LIST_PEERS)))
        return [_peer_info(raw) for raw in response.get(6, []) if isinstance(raw, bytes)]

    def subscribe(self, topic: str) -> Subscription:
        _, conn = self._request(encode((1, PUBSUB), (8, encode((1, PS_SUBSCRIBE), (2, topic)))))
        sub = Subscription(conn, topic)
        self._subs.append(sub)
        return sub

    def publish(self, topic: str, data: bytes) -> None:
        ps = encode((1, PS_PUBLISH), (2, topic), (3, data))
        self._call(encode((1, PUBSUB), (8, ps)))

    def topic_peers(self, topic: str) -> list[str]:
        """PSRequest LIST_PEERS: the peers the daemon knows subscribed to ``topic``."""
        response = self._call(encode((1, PUBSUB), (8, encode((1, PS_LIST_PEERS), (2, topic)))))
        ps = decode(_bytes(response, 7)) if response.get(7) else {}
        return [ID(p).to_base58() for p in ps.get(2, []) if isinstance(p, bytes)]

    def find_peer(self, peer_id: str, timeout_s: int = 30) -> PeerInfo:
        """DHT FIND_PEER: the peer's addresses, looked up through the DHT."""
        dht = encode((1, DHT_FIND_PEER), (2, ID.from_base58(peer_id).to_bytes()), (7, timeout_s))
        response = self._call(encode((1, DHT), (5, dht)), timeout_s + 5)
        return _peer_info(_bytes(decode(_bytes(response, 5)), 2))

    def closest_peers(self, key: bytes, timeout_s: int = 30) -> Iterator[str]:
        """DHT GET_CLOSEST_PEERS: streamed peer IDs (BEGIN, VALUE..., END)."""
        dht = encode((1, DHT_GET_CLOSEST_PEERS), (4, key), (7, timeout_s))
        _, conn = self._request(encode((1, DHT), (5, dht)), timeout_s + 5)
        try:
            while True:
                f = conn.recv(timeout_s + 5)
                kind = _one(f, 1)
                if kind == DHT_END:
                    return
                if kind == DHT_VALUE and f.get(3):
                    yield ID(_bytes(f, 3)).to_base58()
        finally:
            conn.close()

    def close(self) -> None:
        for sub in self._subs:
            sub.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._dir.cleanup()
