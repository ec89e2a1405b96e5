"""TCP with buffered reads, and trio locks taken without a scheduler pass when free.

Replaces: ``TrioTCPStream.read`` (py-libp2p 0.8.1), where every ``read(n)`` takes
``read_lock`` (a trio schedule point) and does one ``recv(n)`` syscall (another). The noise
reader asks for a 2-byte length and then the body, so every noise frame cost two syscalls
and about four trips through trio's scheduler. Here one ``recv`` usually brings many frames
and the following reads are slices of memory. Semantics are unchanged: ``read(n)`` returns
1..n bytes (every buffered byte for ``n=None``), ``b""`` at EOF.

Installed by the ``tcp`` override (``overrides``: ``new_host``'s transport). Upstream fix:
the same buffer in ``TrioTCPStream``.
"""

from __future__ import annotations

import socket
from typing import Any, cast

import trio
from libp2p.io.exceptions import ConnectionClosedError
from libp2p.io.trio import TrioTCPStream
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.transport.tcp.tcp import TCP, TCPListener
from multiaddr import Multiaddr

RECV_SIZE = 256 * 1024  # one recv() takes what the kernel has, up to this


async def acquire(lock: trio.Lock) -> None:
    """``await lock.acquire()`` without the schedule point when the lock is free.

    ``trio.Lock.acquire`` always yields to the scheduler (a full pass of the run loop),
    even uncontended, and the receive and send paths take two or three such locks per
    frame. A free trio lock has no waiters (``release`` hands it straight to the next
    waiter), so ``acquire_nowait`` keeps FIFO fairness; the I/O call that follows is still
    a schedule and cancellation point."""
    try:
        lock.acquire_nowait()
    except trio.WouldBlock:
        await lock.acquire()


def ensure_nodelay(stream: trio.SocketStream) -> None:
    """trio sets TCP_NODELAY on its sockets; asserted here because a message waiting for
    Nagle's algorithm costs tens of milliseconds."""
    try:
        sock = stream.socket
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not sock.getsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY
        ):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


class BufferedTrioTCPStream(TrioTCPStream):
    def __init__(self, stream: trio.SocketStream) -> None:
        super().__init__(stream)
        self._rbuf = b""
        self._rpos = 0
        ensure_nodelay(stream)

    async def read(self, n: int | None = None) -> bytes:
        if n is not None and n <= 0:
            return b""
        if self._rpos >= len(self._rbuf):
            await acquire(self.read_lock)
            try:
                if self._rpos >= len(self._rbuf):  # nobody refilled while we waited
                    chunk = await self._recv()
                    if not chunk:
                        return b""
                    if n is None or n >= len(chunk):
                        return chunk  # the common case at low rates: no copy
                    self._rbuf, self._rpos = chunk, 0
            finally:
                self.read_lock.release()
        start = self._rpos
        end = len(self._rbuf) if n is None else min(len(self._rbuf), start + n)
        self._rpos = end
        data = self._rbuf[start:end]
        if end >= len(self._rbuf):
            self._rbuf, self._rpos = b"", 0
        return data

    async def write(self, data: bytes) -> None:
        """``TrioTCPStream.write`` with the free-lock fast path."""
        await acquire(self.write_lock)
        try:
            await self.stream.send_all(data)
        except trio.BrokenResourceError as error:
            raise ConnectionClosedError(
                f"TCP connection reset by remote peer: {error}", transport="tcp"
            ) from error
        except trio.ClosedResourceError:
            return  # closed locally: upstream ignores the write too
        finally:
            self.write_lock.release()

    async def _recv(self) -> bytes:
        """One recv(), with ``TrioTCPStream.read``'s error translation."""
        try:
            return bytes(await self.stream.receive_some(RECV_SIZE))
        except trio.BrokenResourceError as error:
            raise ConnectionClosedError(
                f"TCP connection reset by remote peer: {error}", transport="tcp"
            ) from error
        except trio.ClosedResourceError:
            return b""


class _BufferedTCPListener(TCPListener):
    """Accepted connections read through ``BufferedTrioTCPStream``: upstream wraps each
    accepted socket in ``TrioTCPStream`` inside ``listen``; the same ``trio.SocketStream``
    is re-wrapped before the swarm sees it."""

    def __init__(self, handler_function: Any) -> None:
        async def handler(tcp_stream: Any) -> None:
            await handler_function(BufferedTrioTCPStream(tcp_stream.stream))

        super().__init__(handler)


class BufferedTCP(TCP):
    """The TCP transport, reading through ``BufferedTrioTCPStream`` both ways."""

    async def _dial_resolved(self, maddr: Multiaddr, source: Any = None) -> Any:
        raw = await super()._dial_resolved(maddr, source)
        conn = cast(RawConnection, raw)
        inner = conn.stream
        if isinstance(inner, TrioTCPStream) and not isinstance(inner, BufferedTrioTCPStream):
            conn.stream = BufferedTrioTCPStream(inner.stream)
        return raw

    def create_listener(self, handler_function: Any) -> TCPListener:
        return _BufferedTCPListener(handler_function)
