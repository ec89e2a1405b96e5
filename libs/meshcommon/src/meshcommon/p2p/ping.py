"""libp2p ping (``/ipfs/ping/1.0.0``) over an open connection, timed on our own clock.

Replaces (override ``ping``, installed by ``overrides``): a new stream per ping, as
py-libp2p 0.8.1's ``PingService.ping`` opens. With it one ping stream per peer is kept
and reused while it was used less than ``PING_STREAM_REUSE_S`` ago (py-libp2p's responder
closes an idle one after 10 s, go's after 60 s); a reused stream that fails is dropped and
the ping retried once on a new one. The responder allows 2 inbound ping streams per peer;
we hold at most one. Upstream fix: none needed, a caller's choice (go-libp2p's
``ping.Ping`` reuses its stream the same way).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import trio
from libp2p.host.ping import ID as PING_PROTOCOL
from libp2p.host.ping import perform_ping_roundtrip

from meshcommon.neighbours import PING_WINDOW
from meshcommon.p2p.errors import describe_dial_error
from meshcommon.p2p.liveness import refused
from meshcommon.p2p.peers import is_connected, parse_peer_id
from meshcommon.p2p.types import PingError

MAX_KEPT_RTTS = 4096  # peers whose last ping RTT is remembered (connected ones are kept)
PING_STREAM_REUSE_S = 5.0  # a ping stream idle longer is closed, not reused


class Pinger:
    """Pings the peers of one host and remembers each one's last RTT (for the mesh
    view). ``reuse_streams`` is the ``ping`` override (off: a new stream per ping)."""

    def __init__(self, host: Any, timeout_s: float) -> None:
        self._host = host
        self.timeout_s = timeout_s
        self.reuse_streams = False
        self.streams: dict[str, tuple[Any, float]] = {}  # peer -> (stream, last used)
        self._locks: dict[str, trio.Lock] = {}
        self.last_rtt: dict[str, tuple[float, float]] = {}  # peer -> (ms, unix time)
        # peer -> its last PING_WINDOW pings: the RTT in ms, None for a failed one (the
        # link's loss and median RTT in the neighbours report); pruned with last_rtt.
        self.window: dict[str, deque[float | None]] = {}
        # Told each pong and each failed ping (peer, answered): liveness closes a peer's
        # connections after pings fail in a row (a refusal of the protocol is an answer).
        self.on_result: Callable[[str, bool], None] | None = None

    async def ping(self, peer_id: str, timeout_s: float | None = None) -> float:
        """One libp2p ping over the existing connection; the round-trip time in ms.

        Only the 32-byte echo is timed (``perf_counter``), not the stream opening and
        protocol negotiation before it, so the number is one network round trip. The
        library's own figure is whole milliseconds (0 on loopback), hence our own clock.
        Never dials: an unconnected peer fails at once with ``not_connected``."""
        host = self._host
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            pid = parse_peer_id(peer_id)
        except ValueError as exc:
            raise PingError(peer_id, "invalid_peer_id", str(exc)) from exc
        if not is_connected(host, pid):
            raise PingError(peer_id, "not_connected", "no open connection (ping never dials)")
        reuse = self.reuse_streams
        lock = self._locks.setdefault(peer_id, trio.Lock())
        # Bounded: an earlier ping to this peer can be stuck for good (py-libp2p's
        # new_stream resets a failed stream in a shielded scope, which never ends when
        # writes to a vanished host block); waiting past the timeout is a failed ping too.
        with trio.move_on_after(timeout) as waiting:
            await lock.acquire()
        if waiting.cancelled_caught:
            self._record(peer_id, None, failed=True)
            raise PingError(
                peer_id, "timeout", f"an earlier ping still unanswered after {timeout:g} s"
            )
        try:
            for attempt in (0, 1):
                stream = await self._kept_stream(peer_id) if reuse else None
                reused = stream is not None
                try:
                    with trio.fail_after(timeout):
                        if stream is None:
                            stream = await host.new_stream(pid, [PING_PROTOCOL])
                        started = time.perf_counter()
                        await perform_ping_roundtrip(stream)
                        rtt_ms = (time.perf_counter() - started) * 1000
                except trio.TooSlowError as exc:
                    # Counted before the reset: a reset on a dead connection can take
                    # its whole second, and a caller's deadline may cancel us there.
                    self._record(peer_id, None, failed=True)
                    await _reset(stream)
                    raise PingError(peer_id, "timeout", f"no pong within {timeout:g} s") from exc
                except Exception as exc:
                    if reused and attempt == 0:
                        await _reset(stream)
                        continue  # a stale stream (the peer closed it): one new try
                    self._record(peer_id, None, failed=not refused(exc))
                    await _reset(stream)
                    reason, detail = describe_dial_error(exc)
                    raise PingError(peer_id, "ping_failed", f"{reason}: {detail}") from exc
                self._remember_rtt(peer_id, rtt_ms)
                if reuse:
                    self.streams[peer_id] = (stream, trio.current_time())
                else:  # close ends the peer's handler loop cleanly
                    with trio.move_on_after(1), contextlib.suppress(Exception):
                        await stream.close()
                return rtt_ms
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            lock.release()
            if not lock.statistics().tasks_waiting:
                self._locks.pop(peer_id, None)

    def link(self, peer_id: str) -> tuple[float | None, float | None, int]:
        """The link over the last pings: median RTT of those that answered (ms), the
        share that failed, and how many pings that is (``(None, None, 0)``: none yet)."""
        window = self.window.get(peer_id)
        if not window:
            return None, None, 0
        answered = [r for r in window if r is not None]
        median = statistics.median(answered) if answered else None
        return median, 1 - len(answered) / len(window), len(window)

    def forget_except(self, connected: set[str]) -> None:
        """Drop the ping windows of peers no longer connected."""
        for peer in [p for p in self.window if p not in connected]:
            del self.window[peer]

    def _record(self, peer_id: str, rtt_ms: float | None, *, failed: bool = False) -> None:
        if self.on_result is not None and (rtt_ms is not None or failed):
            self.on_result(peer_id, rtt_ms is not None)
        window = self.window.get(peer_id)
        if window is None:
            if len(self.window) >= MAX_KEPT_RTTS:
                self.forget_except({str(p) for p in self._host.get_connected_peers()})
            window = self.window[peer_id] = deque(maxlen=PING_WINDOW)
        window.append(rtt_ms)

    def rtt(self, peer_id: str) -> tuple[float, float] | None:
        """``(ms, unix time)`` of the last ping that answered, if any."""
        return self.last_rtt.get(peer_id)

    def _remember_rtt(self, peer_id: str, rtt_ms: float) -> None:
        """Keep the last RTT per peer; peers no longer connected are forgotten first when
        the table is full."""
        if len(self.last_rtt) >= MAX_KEPT_RTTS and peer_id not in self.last_rtt:
            connected = {str(p) for p in self._host.get_connected_peers()}
            self.last_rtt = {p: v for p, v in self.last_rtt.items() if p in connected}
            if len(self.last_rtt) >= MAX_KEPT_RTTS:
                self.last_rtt.clear()
        self.last_rtt[peer_id] = (rtt_ms, time.time())
        self._record(peer_id, rtt_ms)

    async def _kept_stream(self, peer_id: str) -> Any:
        """The kept ping stream to ``peer_id`` if it is fresh enough, else None."""
        cached = self.streams.pop(peer_id, None)
        if cached is None:
            return None
        stream, last_used = cached
        if trio.current_time() - last_used > PING_STREAM_REUSE_S:
            with trio.move_on_after(1), contextlib.suppress(Exception):
                await stream.close()
            return None
        return stream


async def _reset(stream: Any) -> None:
    if stream is not None:
        with trio.move_on_after(1), contextlib.suppress(Exception):
            await stream.reset()
