"""libp2p private networks (pnet, PSK v1), as the spec, go-libp2p, js-libp2p and kubo do it.

Spec: https://github.com/libp2p/specs/blob/master/pnet/Private-Networks-PSK-V1.md. Each side
of a raw connection first sends a random 24-byte nonce; everything it writes after that is
XORed with the XSalsa20 keystream of (pre-shared key, its nonce), and everything it reads
after the other side's nonce with the keystream of (key, that nonce). It sits below
multistream-select: a peer without the key never gets to negotiate anything.

Replaces: ``libp2p.security.pnet`` (py-libp2p 0.8.1, ``new_host(psk=...)``), which uses
plain Salsa20 with an 8-byte nonce, so it cannot talk to any other implementation (nor to
a ``swarm.key`` network), and which assumes a read of 8 bytes returns 8 bytes. Here:
XSalsa20 (``XSalsa20(k, n) = Salsa20(HSalsa20(k, n[0:16]), n[16:24])``, HSalsa20 in pure
Python once per connection direction, the stream in PyCryptodome's C Salsa20), reads
that loop until the nonce is complete, and two things upstream lacks:

- Refusals are detected and named here, not as an obscure multistream or noise error
  later. The first 20 bytes any libp2p peer sends after the nonce are the multistream
  header ``\\x13/multistream/1.0.0\\n``. The listener reads the nonce and those 20 bytes
  (within a budget) and decrypts them with each key it accepts: the key that yields the
  header is the connection's key; none does: ``wrong_key``; the raw bytes are the header
  in clear: ``no_key`` (a peer without a private network); EOF: ``closed``; nothing in
  time: ``timeout``. The dialer checks the listener's first 20 bytes the same way. A
  refused connection is closed before multistream, security, the swarm or pubsub see it.
- Several inbound keys: a listener accepts its primary key and any extra ones and answers
  each dialer in the key it dialled with, so a key can be rotated on a running network
  (accept old+new, then dial new, then new only).

Installed as a transport wrapper (``PnetTransport(BufferedTCP(), keys)``): every raw
connection, dialled or accepted, is protected before the upgrader sees it. Upstream fix:
the same XSalsa20 in ``PskConn`` (24-byte nonce, read loop) and the header check.
"""

from __future__ import annotations

import contextlib
import secrets
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio
from Crypto.Cipher import Salsa20
from libp2p.abc import IListener, IRawConnection, ITransport
from libp2p.io.abc import ReadWriteCloser
from libp2p.io.exceptions import ConnectionClosedError, IOException
from libp2p.network.connection.raw_connection import RawConnection
from multiaddr import Multiaddr

from meshcommon.p2p.tcp import acquire
from meshcommon.p2p.types import PNET_DIRECTIONS, PNET_REFUSAL_REASONS

NONCE_BYTES = 24
KEY_BYTES = 32
# What every libp2p peer sends first after the pnet nonce (multistream-select 1.0.0:
# a varint length, the protocol name, a newline).
MSS_HEADER = b"\x13/multistream/1.0.0\n"
GREETING_BYTES = NONCE_BYTES + len(MSS_HEADER)

INBOUND, OUTBOUND = PNET_DIRECTIONS
WRONG_KEY, NO_KEY, CLOSED, TIMEOUT = PNET_REFUSAL_REASONS
ACCEPT_BUDGET_S = 10.0

# (direction, reason, remote "ip:port") for every refused connection
OnRefused = Callable[[str, str, str], None]

_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_MASK = 0xFFFFFFFF


def hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    """HSalsa20 (the XSalsa20 paper, https://cr.yp.to/snuffle/xsalsa-20081128.pdf): 20
    Salsa20 rounds over (constants, key, 16-byte input) without the final addition;
    words 0, 5, 10, 15, 6, 7, 8, 9 are the 32-byte subkey. Pure Python, ~50 µs."""
    if len(key) != KEY_BYTES or len(nonce16) != 16:
        raise ValueError("HSalsa20 takes a 32-byte key and a 16-byte input")
    k = struct.unpack("<8I", key)
    n = struct.unpack("<4I", nonce16)
    x = [
        _SIGMA[0], k[0], k[1], k[2],
        k[3], _SIGMA[1], n[0], n[1],
        n[2], n[3], _SIGMA[2], k[4],
        k[5], k[6], k[7], _SIGMA[3],
    ]  # fmt: skip

    def qr(a: int, b: int, c: int, d: int) -> None:
        t = (x[a] + x[d]) & _MASK
        x[b] ^= ((t << 7) | (t >> 25)) & _MASK
        t = (x[b] + x[a]) & _MASK
        x[c] ^= ((t << 9) | (t >> 23)) & _MASK
        t = (x[c] + x[b]) & _MASK
        x[d] ^= ((t << 13) | (t >> 19)) & _MASK
        t = (x[d] + x[c]) & _MASK
        x[a] ^= ((t << 18) | (t >> 14)) & _MASK

    for _ in range(10):  # 10 double rounds: columns, then rows
        qr(0, 4, 8, 12)
        qr(5, 9, 13, 1)
        qr(10, 14, 2, 6)
        qr(15, 3, 7, 11)
        qr(0, 1, 2, 3)
        qr(5, 6, 7, 4)
        qr(10, 11, 8, 9)
        qr(15, 12, 13, 14)
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


def xsalsa20(key: bytes, nonce: bytes) -> Any:
    """An XSalsa20 keystream cipher (``.encrypt(data)`` XORs, both ways) for a 32-byte key
    and a 24-byte nonce, positioned at byte 0."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"XSalsa20 takes a {NONCE_BYTES}-byte nonce")
    return Salsa20.new(key=hsalsa20(key, nonce[:16]), nonce=nonce[16:])


class PnetRefused(IOException):
    """A connection refused by the private network; ``reason`` is one of
    ``REFUSAL_REASONS``. ``dial_reason`` is what a failed dial reports (``pnet_wrong_key``)."""

    def __init__(self, direction: str, reason: str, remote: str) -> None:
        super().__init__(f"private network: {direction} connection {remote or '?'}: {reason}")
        self.direction, self.reason, self.remote = direction, reason, remote
        self.dial_reason = f"pnet_{reason}"


def _remote_text(stream: ReadWriteCloser) -> str:
    try:
        remote = stream.get_remote_address()
    except Exception:
        return ""
    return f"{remote[0]}:{remote[1]}" if remote else ""


async def _read_greeting(stream: ReadWriteCloser) -> tuple[bytes, bool]:
    """Up to ``GREETING_BYTES`` from ``stream``: ``(bytes, eof)``. Stops early once the
    first 20 bytes are the multistream header in clear (a peer without pnet may wait for
    our header before it sends more)."""
    buf = b""
    while len(buf) < GREETING_BYTES:
        if len(buf) >= len(MSS_HEADER) and buf.startswith(MSS_HEADER):
            return buf, False
        try:
            chunk = await stream.read(GREETING_BYTES - len(buf))
        except (IOException, OSError):
            return buf, True
        if not chunk:
            return buf, True
        buf += chunk
    return buf, False


def _classify(buf: bytes, eof: bool, keys: Sequence[bytes]) -> tuple[str, bytes, Any]:
    """``(reason, key, cipher)``: reason "" and the key whose keystream turns the bytes
    after the nonce into the multistream header (the cipher positioned past them), or the
    refusal reason."""
    if buf.startswith(MSS_HEADER):
        return NO_KEY, b"", None
    if eof or len(buf) < GREETING_BYTES:
        return CLOSED if eof else TIMEOUT, b"", None
    nonce, sealed = buf[:NONCE_BYTES], buf[NONCE_BYTES:GREETING_BYTES]
    for key in keys:
        cipher = xsalsa20(key, nonce)
        if cipher.decrypt(sealed) == MSS_HEADER:
            return "", key, cipher
    return WRONG_KEY, b"", None


class PnetStream(ReadWriteCloser):
    """A raw byte stream under a private network. Writes: our nonce first (the dialer
    sends it as soon as it is connected, the listener as soon as it accepts), then data
    XORed with our keystream. Reads: the dialer checks
    the listener's nonce and header on its first read; the listener's check was done
    before this stream was made (``PnetTransport``), and the header is handed on."""

    def __init__(
        self,
        inner: ReadWriteCloser,
        key: bytes,
        *,
        read_cipher: Any = None,
        pending: bytes = b"",
        on_refused: OnRefused | None = None,
        sent_nonce: bytes | None = None,
    ) -> None:
        """``sent_nonce``: the nonce this side already sent (the listener sends its own
        before it knows the dialer's key); None: sent with the first write."""
        self.inner = inner
        self._key = key
        self._nonce = sent_nonce or secrets.token_bytes(NONCE_BYTES)
        self._write_cipher = xsalsa20(key, self._nonce)
        self._nonce_sent = sent_nonce is not None
        self._read_cipher = read_cipher  # None: the dialer, before the listener's greeting
        self._pending = pending  # decrypted bytes not yet handed out
        self._on_refused = on_refused
        self._read_lock = trio.Lock()
        self._write_lock = trio.Lock()
        self._broken = False

    def __repr__(self) -> str:  # the key never shows
        return f"PnetStream({self.inner!r})"

    async def write(self, data: bytes) -> None:
        await acquire(self._write_lock)
        try:
            if self._broken:
                raise ConnectionClosedError("private-network stream broken by an earlier write")
            out = self._write_cipher.encrypt(bytes(data))
            if not self._nonce_sent:
                out, self._nonce_sent = self._nonce + out, True
            try:
                await self.inner.write(out)
            except BaseException:
                # The keystream moved on but the bytes may not have gone: nothing written
                # after this could be decrypted by the peer.
                self._broken = True
                raise
        finally:
            self._write_lock.release()

    async def send_nonce(self) -> None:
        """Send our nonce now if it has not gone yet (js-libp2p exchanges nonces before
        anything else and gives up after 1 s; go-libp2p sends its own with its first
        write; the spec allows both)."""
        await self.write(b"")

    async def read(self, n: int | None = None) -> bytes:
        if n is not None and n <= 0:
            return b""
        await acquire(self._read_lock)
        try:
            if self._read_cipher is None:
                await self._check_listener()
            if self._pending:
                if n is None or n >= len(self._pending):
                    data, self._pending = self._pending, b""
                else:
                    data, self._pending = self._pending[:n], self._pending[n:]
                return data
            chunk = await self.inner.read(n)
            return bytes(self._read_cipher.decrypt(chunk)) if chunk else b""
        finally:
            self._read_lock.release()

    async def _check_listener(self) -> None:
        """Dialer: the listener's nonce and its first 20 bytes, which must decrypt to the
        multistream header; else the connection is refused here, counted, and closed."""
        buf, eof = await _read_greeting(self.inner)
        reason, _, cipher = _classify(buf, eof, [self._key])
        if reason:
            remote = _remote_text(self.inner)
            if self._on_refused is not None:
                self._on_refused(OUTBOUND, reason, remote)
            await self.close()
            raise PnetRefused(OUTBOUND, reason, remote)
        self._read_cipher, self._pending = cipher, MSS_HEADER

    async def close(self) -> None:
        await self.inner.close()

    def get_remote_address(self) -> tuple[str, int] | None:
        return self.inner.get_remote_address()


async def _close_quietly(stream: ReadWriteCloser) -> None:
    with trio.move_on_after(1), contextlib.suppress(Exception):
        await stream.close()


class _PnetListener(IListener):
    """The inner transport's listener, with every accepted stream checked first."""

    def __init__(self, inner: IListener) -> None:
        self.inner = inner

    async def listen(self, maddr: Multiaddr) -> None:
        await self.inner.listen(maddr)

    def get_addrs(self) -> tuple[Multiaddr, ...]:
        return self.inner.get_addrs()

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:  # listeners and tcp.TCPListener attributes
        return getattr(self.inner, name)


class PnetTransport(ITransport):
    """``inner`` (a TCP transport) under a private network: dials with ``keys[0]``,
    accepts any of ``keys`` (the primary first, then the extra keys of a rotation).
    ``on_refused(direction, reason, remote)`` is called once per refused connection."""

    def __init__(
        self,
        inner: ITransport,
        keys: Sequence[bytes],
        *,
        on_refused: OnRefused | None = None,
        accept_budget_s: float = ACCEPT_BUDGET_S,
    ) -> None:
        if not keys:
            raise ValueError("a private network needs at least one key")
        for key in keys:
            if len(key) != KEY_BYTES:
                raise ValueError(f"a private-network key is {KEY_BYTES} bytes")
        self.inner = inner
        self._keys = tuple(dict.fromkeys(keys))  # primary first, no duplicate
        self._on_refused = on_refused
        self._accept_budget_s = accept_budget_s
        self.provides_native_muxing = inner.provides_native_muxing

    def __repr__(self) -> str:  # the keys never show
        return f"PnetTransport({self.inner!r}, {len(self._keys)} keys)"

    def __getattr__(self, name: str) -> Any:  # protocols(), listen_order()... of inner
        return getattr(self.inner, name)

    def can_dial(self, maddr: Multiaddr) -> bool:
        return self.inner.can_dial(maddr)

    def protocols(self) -> list[str]:
        return list(self.inner.protocols())

    def can_listen(self, maddr: Multiaddr) -> bool:
        return self.inner.can_listen(maddr)

    async def _protect_dialled(self, raw: IRawConnection) -> IRawConnection:
        if not isinstance(raw, RawConnection):
            raise TypeError(f"private network: cannot protect a {type(raw).__name__}")
        stream = PnetStream(raw.stream, self._keys[0], on_refused=self._on_refused)
        raw.stream = stream
        try:
            await stream.send_nonce()
        except BaseException:
            with trio.CancelScope(shield=True):
                await _close_quietly(stream)
            raise
        return raw

    async def dial(self, maddr: Multiaddr) -> IRawConnection:
        return await self._protect_dialled(await self.inner.dial(maddr))

    async def dial_with_source(self, maddr: Multiaddr, source: tuple[str, int]) -> IRawConnection:
        dial: Any = self.inner.dial_with_source  # type: ignore[attr-defined]
        return await self._protect_dialled(await dial(maddr, source))

    def create_listener(self, handler_function: Any) -> IListener:
        handler: Callable[[ReadWriteCloser], Awaitable[None]] = handler_function

        async def guarded(stream: ReadWriteCloser) -> None:
            protected = await self.accept(stream)
            if protected is not None:
                await handler(protected)

        return _PnetListener(self.inner.create_listener(guarded))

    async def accept(self, stream: ReadWriteCloser) -> PnetStream | None:
        """Listener: the dialer's nonce and first 20 bytes, within the budget, decrypted
        with each accepted key. The stream under the key that yields the multistream
        header, or None (refused: counted, closed)."""
        buf, eof = b"", False
        # Our nonce first, at once: it does not depend on which key the dialer uses, and
        # js-libp2p's dialer waits for it (1 s) before it sends anything else.
        nonce = secrets.token_bytes(NONCE_BYTES)
        with trio.move_on_after(self._accept_budget_s):
            try:
                await stream.write(nonce)
            except (IOException, OSError):
                eof = True
            else:
                buf, eof = await _read_greeting(stream)
        reason, key, cipher = _classify(buf, eof, self._keys)
        if reason:
            if self._on_refused is not None:
                self._on_refused(INBOUND, reason, _remote_text(stream))
            await _close_quietly(stream)
            return None
        return PnetStream(stream, key, read_cipher=cipher, pending=MSS_HEADER, sent_nonce=nonce)
