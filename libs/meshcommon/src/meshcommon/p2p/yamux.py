"""Yamux with a lean frame loop and go-yamux window updates.

Replaces, in py-libp2p 0.8.1:

- ``YamuxStream.read``: upstream sends a WINDOW_UPDATE after every read (the "partial
  slack" branch fires even before ``PY_YAMUX_RELEASE_ON_READ`` is consulted), and pubsub
  reads its varint length prefixes a byte at a time: a 300-byte message made the receiver
  write three encrypted WINDOW_UPDATE frames and the sender parse them. Here, as go-yamux
  ``sendWindowUpdate`` and js-yamux do, the credit owed is sent once it reaches half the
  window. The peer always keeps at least half a window while we keep up, so it is never
  starved; credit is withheld only for bytes still unread in our buffer.
- ``Yamux.handle_incoming``: upstream reads the 12-byte header and the body with two
  ``read_exactly`` calls through the secure session, formats two debug strings per frame
  with logging off, opens a ``fail_after`` scope per body and takes ``streams_lock`` (a
  schedule point) per frame. Here whole decrypted noise messages are read and every
  complete frame in them handled; plain DATA and WINDOW_UPDATE frames are applied without
  awaiting (atomic under trio's cooperative scheduling); the rarer frames (SYN, ACK, FIN,
  RST, PING, GO_AWAY) follow upstream's handling line for line.
- ``MuxerMultistream.new_conn``: 0.8.1 always builds ``Yamux`` for ``/yamux/1.0.0`` and
  ignores ``muxer_opt``, so the muxer is swapped on the swarm's upgrader
  (``install_lean_yamux``, the ``yamux`` override's install function in ``overrides``).

Wire format and flow-control rules are the yamux spec's; nothing new is sent. Checked
against stock py-libp2p and js-libp2p 2.9 (tests/p2p/test_overrides.py, test_yamux.py,
tests/interop). These methods copy upstream logic, fingerprinted in
``overrides.UPSTREAM`` (tests/p2p/test_fingerprints.py). Upstream fix: the same hysteresis
in ``YamuxStream.read`` and a batched frame loop.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

import trio
from libp2p.custom_types import TProtocol
from libp2p.io.exceptions import ConnectionClosedError, IOException
from libp2p.network.connection.exceptions import RawConnError
from libp2p.peer.id import ID
from libp2p.stream_muxer.exceptions import MuxedStreamEOF, MuxedStreamReset
from libp2p.stream_muxer.muxer_multistream import MuxerMultistream
from libp2p.stream_muxer.yamux import yamux as yamux_mod
from libp2p.stream_muxer.yamux.yamux import (
    FLAG_ACK,
    FLAG_FIN,
    FLAG_RST,
    FLAG_SYN,
    GO_AWAY_CONN_GARBAGE_COLLECTED,
    GO_AWAY_INTERNAL_ERROR,
    GO_AWAY_NORMAL,
    GO_AWAY_PROTOCOL_ERROR,
    HEADER_SIZE,
    MAX_MESSAGE_SIZE,
    MAX_WINDOW_SIZE,
    TYPE_DATA,
    TYPE_GO_AWAY,
    TYPE_PING,
    TYPE_WINDOW_UPDATE,
    YAMUX_HEADER_FORMAT,
    Yamux,
    YamuxStream,
)

from meshcommon.p2p.tcp import acquire

# Logs under the library's own logger name: operators filter on it already.
_yamux_log = logging.getLogger(yamux_mod.__name__)
_HEADER = struct.Struct(YAMUX_HEADER_FORMAT)


class LeanYamuxStream(YamuxStream):
    """YamuxStream with a lean read/write and go-yamux window-update hysteresis.

    Replaces ``YamuxStream.read`` (and, through it, ``_auto_tune_and_send_window_update``)
    and ``YamuxStream.write``'s common case.

    Upstream sends a WINDOW_UPDATE after *every* read (``PY_YAMUX_RELEASE_ON_READ``
    defaults on, and the "partial slack" branch fires before it anyway); pubsub reads the
    varint length one byte at a time, so a 300-byte message produced three encrypted
    WINDOW_UPDATE writes on the receiver and three frames to parse on the sender.

    Here (as go-yamux ``sendWindowUpdate``, and js-yamux): after a read, the credit we owe
    is ``delta = target - buffered - recv_window``; it is sent only once ``delta`` reaches
    half of the target window. The peer therefore always holds at least half a window of
    credit while we keep up, and can never be starved: credit is withheld only for bytes
    still sitting unread in our buffer, exactly as in go-yamux. Upstream's auto-tuning
    (``_apply_autotune_epoch``) is kept.
    """

    def _credit_to_send(self) -> int:
        buf = self.conn.stream_buffers.get(self.stream_id)
        buffered = len(buf) if buf else 0
        delta = self.target_recv_window - buffered - self.recv_window
        if delta < self.target_recv_window // 2:
            return 0
        self.recv_window += delta
        return delta + self._apply_autotune_epoch(buffered)

    async def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = None
        elif n == 0:
            return b""
        conn = self.conn
        sid = self.stream_id
        while True:
            buf = conn.stream_buffers.get(sid)
            if buf:
                if n is None or n >= len(buf):
                    data = bytes(buf)
                    buf.clear()
                else:
                    data = bytes(buf[:n])
                    del buf[:n]
                credit = self._credit_to_send()
                if credit > 0:
                    await self.send_window_update(credit)
                if self.closed and not buf:
                    await conn._finalize_stream(self, fully_closed=True)
                return data
            if buf is None:
                # Bookkeeping gone: stream finalised or connection cleaned up.
                if self.reset_received:
                    raise MuxedStreamReset("Stream was reset")
                raise MuxedStreamEOF("Stream closed")
            if self.reset_received:
                raise MuxedStreamReset("Stream was reset")
            if self.recv_closed:
                raise MuxedStreamEOF("Stream is closed for receiving")
            if conn.event_shutting_down.is_set():
                raise MuxedStreamEOF("Connection shut down")
            if self.closed:
                raise MuxedStreamReset("Stream is reset or closed")
            event = conn.stream_events.get(sid)
            if event is None:
                raise MuxedStreamEOF("Stream was removed during read")
            await event.wait()
            if conn.stream_events.get(sid) is event:
                conn.stream_events[sid] = trio.Event()

    async def write(self, data: bytes) -> None:
        # Fast path: one frame, enough send window, nobody else in the slow path.
        size = len(data)
        if (
            0 < size <= MAX_MESSAGE_SIZE - HEADER_SIZE
            and size <= self.send_window
            and not self.send_closed
            and not self.closed
            and not self.window_lock.locked()
            and self.rw_lock._writer_lock.value == 1
        ):
            self.send_window -= size
            frame = _HEADER.pack(0, TYPE_DATA, 0, self.stream_id, size) + bytes(data)
            await self.conn._write_frame(frame)
            return
        await super().write(data)


class LeanYamux(Yamux):
    """Yamux connection with a lean frame loop (replaces ``Yamux.handle_incoming``),
    ``LeanYamuxStream`` streams, and ``_write_frame`` without per-frame debug formatting.

    Installed with ``install_lean_yamux(host)`` (``new_host(muxer_opt=...)`` is not
    enough: 0.8.1's ``MuxerMultistream.new_conn`` hard-codes ``Yamux``).

    Frame loop: upstream reads the 12-byte header and the body with two ``read_exactly``
    calls on the secure session (each a chain of awaits and locks), formats two debug
    f-strings per frame even with logging off, opens a ``fail_after`` scope per body, and
    takes ``streams_lock`` (a trio schedule point) per frame. Here whole decrypted noise
    messages are read into a buffer and every complete frame in it is handled; the
    frequent frames (DATA / WINDOW_UPDATE with no flags) are applied synchronously, which
    is atomic under trio's cooperative scheduling; if some task holds ``streams_lock``
    across an await we take it, as upstream. Rare frames (SYN/ACK/FIN/RST, PING, GO_AWAY)
    follow upstream's handling line for line. Wire format and flow-control rules are the
    yamux spec's; nothing new is sent.

    ``bytes_in`` / ``bytes_out`` count the connection's yamux bytes (frames, decrypted)
    each way, where they already pass: one addition per read or write, for the per-peer
    traffic of the neighbours report (``meshcommon.neighbours``).
    """

    bytes_in = 0
    bytes_out = 0

    async def open_stream(self) -> YamuxStream:
        stream = await super().open_stream()
        # Upstream constructs YamuxStream directly; LeanYamuxStream adds no state, only
        # methods, so switching the instance's class is safe.
        stream.__class__ = LeanYamuxStream
        return stream

    async def _write_frame(self, data: bytes) -> None:
        self.bytes_out += len(data)
        if _yamux_log.isEnabledFor(logging.DEBUG):
            await super()._write_frame(data)
            return
        lock = self._write_lock
        await acquire(lock)
        try:
            await self.secured_conn.write(data)
        finally:
            lock.release()

    async def _read_chunk(self) -> bytes:
        chunk = await self.secured_conn.read(None)
        if not chunk:
            raise ConnectionClosedError("Connection closed")
        self.bytes_in += len(chunk)
        return chunk

    async def handle_incoming(self) -> None:
        buf = bytearray()
        unpack_from = _HEADER.unpack_from
        streams = self.streams
        stream_buffers = self.stream_buffers
        stream_events = self.stream_events
        while not self.event_shutting_down.is_set():
            try:
                if len(buf) < HEADER_SIZE:
                    buf += await self._read_chunk()
                    continue
                _, typ, flags, sid, length = unpack_from(buf, 0)
                if typ == TYPE_DATA:
                    if length > MAX_WINDOW_SIZE:
                        _yamux_log.warning(
                            "Yamux: peer %s announced oversized DATA frame length=%d "
                            "on stream %d; closing connection",
                            self.peer_id,
                            length,
                            sid,
                        )
                        await self._cleanup_on_error()
                        break
                    end = HEADER_SIZE + length
                    if len(buf) < end:
                        # Body spans several noise messages (large payloads): keep
                        # upstream's bound on how long a frame body may take.
                        with trio.fail_after(yamux_mod._yamux_data_read_timeout()):
                            while len(buf) < end:
                                buf += await self._read_chunk()
                    body = bytes(buf[HEADER_SIZE:end])
                    del buf[:end]
                else:
                    body = b""
                    del buf[:HEADER_SIZE]

                if flags == 0 and not self.streams_lock.locked():
                    stream = streams.get(sid)
                    if typ == TYPE_DATA:
                        if stream is not None and length:
                            stream_buffers[sid].extend(body)
                            stream.recv_window -= length
                            if stream.recv_window < 0:
                                _yamux_log.warning(
                                    "Stream %d: peer exceeded receive window by %d bytes",
                                    sid,
                                    -stream.recv_window,
                                )
                                stream.recv_window = 0
                            ev = stream_events.get(sid)
                            if ev is not None:
                                ev.set()
                        continue
                    if typ == TYPE_WINDOW_UPDATE:
                        if stream is not None:
                            stream.send_window += length
                        continue
                if not await self._handle_frame(typ, flags, sid, length, body):
                    break
            except trio.TooSlowError:
                _yamux_log.warning(
                    "Yamux: timed out reading DATA frame body for peer %s; closing", self.peer_id
                )
                await self._cleanup_on_error()
                break
            except Exception as e:  # EOF, reset, decrypt failure: the connection is done
                level = (
                    logging.DEBUG if isinstance(e, (IOException, RawConnError)) else logging.WARNING
                )
                _yamux_log.log(
                    level,
                    "Yamux read loop for %s ends: %r",
                    self.peer_id,
                    e,
                    exc_info=level == logging.WARNING,
                )
                await self._cleanup_on_error()
                break

    async def _handle_frame(
        self, typ: int, flags: int, stream_id: int, length: int, body: bytes
    ) -> bool:
        """Upstream's handling of the rarer frames (same logic as
        ``Yamux.handle_incoming`` in 0.8.1, with the body already read). Returns False
        when the loop must stop."""
        if typ in (TYPE_DATA, TYPE_WINDOW_UPDATE) and flags & FLAG_SYN:
            rst_header = ack_header = None
            new_stream_notify = None
            async with self.streams_lock:
                if stream_id not in self.streams:
                    stream: YamuxStream = LeanYamuxStream(stream_id, self, False)
                    self.streams[stream_id] = stream
                    self.stream_buffers[stream_id] = bytearray()
                    self.stream_events[stream_id] = trio.Event()
                    if typ == TYPE_WINDOW_UPDATE and length > 0:
                        stream.send_window += length
                    elif typ == TYPE_DATA and length > 0:
                        self.stream_buffers[stream_id].extend(body)
                        stream.recv_window -= len(body)
                        if stream.recv_window < 0:
                            stream.recv_window = 0
                        self.stream_events[stream_id].set()
                    if flags & FLAG_FIN:
                        stream.recv_closed = True
                        if stream.send_closed:
                            stream.closed = True
                        self.stream_events[stream_id].set()
                        if stream.closed:
                            self._finalize_stream_locked(stream, fully_closed=True)
                    if flags & FLAG_RST:
                        stream.closed = True
                        stream.reset_received = True
                        self.stream_events[stream_id].set()
                        self._finalize_stream_locked(stream, fully_closed=True)
                        new_stream_notify = stream  # delivered reset, no ACK
                    else:
                        ack_header = _HEADER.pack(0, TYPE_WINDOW_UPDATE, FLAG_ACK, stream_id, 0)
                        new_stream_notify = stream
                else:
                    rst_header = _HEADER.pack(0, TYPE_WINDOW_UPDATE, FLAG_RST, stream_id, 0)
            if rst_header is not None:
                await self._write_frame(rst_header)
            elif ack_header is not None:
                await self._write_frame(ack_header)
                if new_stream_notify is not None:
                    await self.new_stream_send_channel.send(new_stream_notify)
            elif new_stream_notify is not None:
                await self.new_stream_send_channel.send(new_stream_notify)
            return True

        if typ in (TYPE_DATA, TYPE_WINDOW_UPDATE):
            # ACK and/or FIN/RST (and, when streams_lock was held, plain frames too).
            async with self.streams_lock:
                known = self.streams.get(stream_id)
                if known is None:
                    return True
                stream = known
                if typ == TYPE_WINDOW_UPDATE:
                    if length > 0:
                        stream.send_window += length
                elif length > 0:
                    self.stream_buffers[stream_id].extend(body)
                    stream.recv_window -= len(body)
                    if stream.recv_window < 0:
                        _yamux_log.warning(
                            "Stream %d: peer exceeded receive window by %d bytes",
                            stream_id,
                            -stream.recv_window,
                        )
                        stream.recv_window = 0
                ev = self.stream_events.get(stream_id)
                if ev is not None and (typ == TYPE_DATA or flags & (FLAG_FIN | FLAG_RST)):
                    ev.set()
                if flags & FLAG_FIN:
                    stream.recv_closed = True
                    if stream.send_closed:
                        stream.closed = True
                if flags & FLAG_RST:
                    stream.closed = True
                    stream.reset_received = True
                if stream.closed:
                    self._finalize_stream_locked(stream, fully_closed=True)
            return True

        if typ == TYPE_PING:
            if flags & FLAG_SYN:
                await self._write_frame(_HEADER.pack(0, TYPE_PING, FLAG_ACK, 0, length))
            elif flags & FLAG_ACK:
                new_rtt = trio.current_time() - self._ping_sent_time
                self._rtt = new_rtt if self._rtt == 0.0 else (self._rtt + new_rtt) / 2
                self._ping_event.set()
            return True

        if typ == TYPE_GO_AWAY:
            if length == GO_AWAY_PROTOCOL_ERROR:
                _yamux_log.error("Received GO_AWAY for peer %s: Protocol error", self.peer_id)
            elif length not in (
                GO_AWAY_NORMAL,
                GO_AWAY_INTERNAL_ERROR,
                GO_AWAY_CONN_GARBAGE_COLLECTED,
            ):
                _yamux_log.warning(
                    "Received GO_AWAY for peer %s with code %d", self.peer_id, length
                )
            self.event_shutting_down.set()
            await self._cleanup_on_error()
            return False
        return True  # unknown frame type: ignored, as upstream


class RegisteredMuxerMultistream(MuxerMultistream):
    """Upstream ``MuxerMultistream.new_conn`` ignores the class registered for
    ``/yamux/1.0.0`` and always builds ``Yamux``; this one builds the registered class
    (same constructor arguments as upstream's special case). Installed on the swarm's
    upgrader by ``install_lean_yamux``."""

    async def new_conn(self, conn: Any, peer_id: ID) -> Any:
        protocol, transport_class = await self._selector.select(
            conn, conn.is_initiator, self.negotiate_timeout
        )
        muxed: Any
        if isinstance(transport_class, type) and issubclass(transport_class, Yamux):

            async def on_close() -> None:
                pass

            muxed = transport_class(
                conn, peer_id, is_initiator=conn.is_initiator, on_close=on_close
            )
        else:
            muxed = transport_class(conn, peer_id)
        return self._annotate_connection(muxed, conn, protocol)


def install_lean_yamux(host: Any) -> None:
    """Make ``host`` negotiate ``/yamux/1.0.0`` with ``LeanYamux`` (mplex kept)."""
    upgrader = host.get_network().upgrader
    old = upgrader.muxer_multistream
    muxers = dict(old.transports)
    muxers[TProtocol(yamux_mod.PROTOCOL_ID)] = LeanYamux
    upgrader.muxer_multistream = RegisteredMuxerMultistream(
        muxers, negotiate_timeout=old.negotiate_timeout
    )
