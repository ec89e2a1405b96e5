"""Connections to a host that vanished: found, closed and counted.

A host that is powered off sends no FIN and no RST: its TCP connections stay ESTABLISHED
for the ~15 minutes retransmissions take to give up, and py-libp2p 0.8.1 neither closes a
connection whose pings fail nor prefers a newer connection from the same peer ID. While
such a connection lives the peer counts as connected: nobody re-dials it at the address
it came back on (Swarm reschedules a slot with the same key and a new IP), pubsub keeps
its stream on the dead connection, so the subscriptions sent over it are never read and
the peer never learns who wants its messages.

Two rules, both bounded and counted (``NodeCounters.stale_closed`` by reason, logged on
the 1st, 10th, 100th... close of each reason):

- ``ping_failures``: a peer whose last ``failures_to_close`` pings all failed (no pong in
  time, or the connection broken: a private-network stream whose write was cut by a
  timeout refuses every later write) has its connections closed. ``ping.Pinger``
  reports each ping; a refusal of the protocol is an answer (a peer without ping is
  alive).
- ``replaced``: when a new connection from a peer arrives while older ones are open,
  each older one is pinged on that connection itself (within ``probe_timeout_s``); one
  that does not answer is closed. One that answers is left to the swarm (py-libp2p keeps
  one per peer, trimming the extra after its grace period).

Closing a dead connection must not wait on it: writes to a vanished host block once the
socket's send buffer is full, and py-libp2p's close writes (yamux GO_AWAY, stream RSTs)
under the same write lock. So the socket itself is closed first (blocked writers fail at
once), then the swarm's close runs (bounded) and tells pubsub and the other notifees, so
pubsub moves the peer to its live connection or forgets it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import trio
from libp2p.host.ping import ID as PING_PROTOCOL
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.peer.id import ID
from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator

from meshcommon.p2p.types import STALE_PING_FAILURES, STALE_REPLACED, NodeCounters

log = logging.getLogger(__name__)

CLOSE_BUDGET_S = 3.0  # the swarm's own close of a connection whose socket is closed
MAX_PENDING_JOBS = 256  # probes and closes queued (a flood of new connections: dropped, counted)
MAX_TRACKED_PEERS = 4096  # peers whose consecutive ping failures are counted


def refused(exc: BaseException) -> bool:
    """Whether a failed ping was the peer refusing the protocol (multistream ``na``): an
    answer, so the peer is alive. Anything else (no answer in time, the connection
    broken, reset) counts against the connection."""
    from libp2p.protocol_muxer.exceptions import MultiselectClientError

    seen: BaseException | None = exc
    for _ in range(8):  # the cause chain, bounded
        if seen is None:
            return False
        if isinstance(seen, MultiselectClientError) and "not supported" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _worth_logging(count: int) -> bool:
    return count in (1, 10, 100) or count % 1000 == 0


class ConnectionReaper:
    """Closes this host's connections to vanished peers (see the module docstring).
    ``run`` does the work in the node's trio nursery; ``ping_result`` and the swarm
    notifee (``notifee``) only queue it."""

    def __init__(
        self,
        host: Any,
        counters: NodeCounters,
        *,
        failures_to_close: int,
        probe_timeout_s: float,
        on_closed: Callable[[ID], None] | None = None,
    ) -> None:
        self._host = host
        self._counters = counters
        self.failures_to_close = failures_to_close
        self.probe_timeout_s = probe_timeout_s
        # Told each peer whose dead connection was closed (pubsub moves its stream now).
        self.on_closed = on_closed
        # The muxed connection pubsub writes to a peer on (pubsub.MeshPubsub.outbound_conn).
        self.outbound_conn: Callable[[ID], Any] | None = None
        self._failures: dict[str, int] = {}  # peer -> pings failed in a row
        self._send, self._receive = trio.open_memory_channel[
            tuple[Callable[..., Any], tuple[Any, ...]]
        ](MAX_PENDING_JOBS)
        self._probing: set[int] = set()  # id() of connections being probed

    def notifee(self) -> Any:
        """An ``INotifee`` for the swarm: a new connection has its older siblings probed."""
        from libp2p.abc import INotifee

        reaper = self

        class _Notifee(INotifee):
            async def opened_stream(self, network: Any, stream: Any) -> None:
                return None

            async def closed_stream(self, network: Any, stream: Any) -> None:
                return None

            async def connected(self, network: Any, conn: Any) -> None:
                reaper.connected(conn)

            async def disconnected(self, network: Any, conn: Any) -> None:
                return None

            async def listen(self, network: Any, multiaddr: Any) -> None:
                return None

            async def listen_close(self, network: Any, multiaddr: Any) -> None:
                return None

        return _Notifee()

    # -- what starts the work (never blocks) --------------------------------------------
    def ping_result(self, peer_id: str, ok: bool) -> None:
        """One ping's outcome (``ok``: a pong; not ok: none in time); the
        ``failures_to_close``-th failure in a row closes the peer's connections."""
        if ok:
            self._failures.pop(peer_id, None)
            return
        if self.failures_to_close <= 0:
            return
        if peer_id not in self._failures and len(self._failures) >= MAX_TRACKED_PEERS:
            self._failures.clear()  # only a flood of peers gets here: start counting again
        failed = self._failures[peer_id] = self._failures.get(peer_id, 0) + 1
        if failed >= self.failures_to_close:
            self._failures.pop(peer_id, None)
            detail = f"{failed} pings in a row unanswered"
            self._queue(self._close_peer, peer_id, detail)

    def connected(self, conn: Any) -> None:
        """A new connection: probe the same peer's older ones, and unblock pubsub's writes
        on one the swarm already dropped for it."""
        peer = conn.muxed_conn.peer_id
        conns = self._host.get_network().get_connections(peer)
        writing = self.outbound_conn(peer) if self.outbound_conn is not None else None
        if (
            writing is not None
            and writing is not conn.muxed_conn
            and all(c.muxed_conn is not writing for c in conns)
            and id(writing) not in self._probing
        ):
            self._probing.add(id(writing))
            self._queue(self._unblock_dropped, writing)
        for older in conns:
            if older is conn or getattr(older, "is_closed", False):
                continue
            if id(older) in self._probing:
                continue
            self._probing.add(id(older))
            self._queue(self._probe, older)

    def _queue(self, job: Callable[..., Any], *args: Any) -> None:
        try:
            self._send.send_nowait((job, args))
        except trio.WouldBlock:
            self._counters.stale_dropped_jobs += 1
            if _worth_logging(self._counters.stale_dropped_jobs):
                log.warning(
                    "connection checks: %d not done, the queue of %d was full",
                    self._counters.stale_dropped_jobs,
                    MAX_PENDING_JOBS,
                )
            if job == self._probe:
                self._probing.discard(id(args[0]))

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            async for job, args in self._receive:
                nursery.start_soon(job, *args)

    # -- the work -------------------------------------------------------------------------
    async def _probe(self, conn: Any) -> None:
        """Ping over ``conn`` itself; close it if it does not answer in time."""
        try:
            peer = str(conn.muxed_conn.peer_id)
            silent = await self.silent(conn)
            if silent is not None and not getattr(conn, "is_closed", False):
                detail = f"a newer connection arrived and this one did not answer a ping: {silent}"
                await self._close(conn, peer, STALE_REPLACED, detail)
        finally:
            self._probing.discard(id(conn))

    async def silent(self, conn: Any) -> str | None:
        """One libp2p ping on this very connection: None if the peer answered (a pong, or
        any refusal: a peer without the ping protocol is alive), else what happened."""
        stream = None
        try:
            with trio.fail_after(self.probe_timeout_s):
                stream = await conn.new_stream()
                selected = await self._host.multiselect_client.select_one_of(
                    [PING_PROTOCOL], MultiselectCommunicator(stream)
                )
                stream.set_protocol(selected)
                await perform_ping_roundtrip(stream)
        except trio.TooSlowError:
            return f"no pong within {self.probe_timeout_s:g} s"
        except Exception as exc:
            if refused(exc):
                return None  # it answered, if only to refuse
            return f"{type(exc).__name__}: {exc}"[:300]
        finally:
            if stream is not None:
                with trio.move_on_after(1), contextlib.suppress(Exception):
                    await stream.reset()
        return None

    async def _unblock_dropped(self, muxed: Any) -> None:
        """py-libp2p 0.8.1 trims a peer's extra connection (the new one is kept while in
        its grace period) with a graceful close that writes, which never ends on a dead
        socket: pubsub's stream stays on it, its writes blocked. A close that has not
        ended in ``CLOSE_BUDGET_S`` gets its socket closed under it."""
        try:
            closed = getattr(muxed, "event_closed", None)  # Yamux's
            if closed is None or getattr(muxed, "is_closed", False):
                return
            with trio.move_on_after(CLOSE_BUDGET_S):
                await closed.wait()
                return
            secured = getattr(muxed, "secured_conn", None)
            if secured is not None:
                with trio.move_on_after(1), contextlib.suppress(Exception):
                    await secured.close()
            detail = "the swarm dropped it for a newer connection and its close hung"
            self._count(str(muxed.peer_id), STALE_REPLACED, detail)
            if self.on_closed is not None:
                self.on_closed(muxed.peer_id)
        finally:
            self._probing.discard(id(muxed))

    async def _close_peer(self, peer_id: str, detail: str) -> None:
        try:
            pid = ID.from_base58(peer_id)
        except Exception:
            return
        for conn in list(self._host.get_network().get_connections(pid)):
            if not getattr(conn, "is_closed", False):
                await self._close(conn, peer_id, STALE_PING_FAILURES, detail)

    async def _close(self, conn: Any, peer_id: str, reason: str, detail: str) -> None:
        await close_dead(conn)
        self._count(peer_id, reason, detail)
        if self.on_closed is not None:
            self.on_closed(conn.muxed_conn.peer_id)

    def _count(self, peer_id: str, reason: str, detail: str) -> None:
        closed = self._counters.stale_closed
        closed[reason] += 1
        if _worth_logging(closed[reason]):
            log.warning(
                "closed a dead connection to %s (%s: %s); %d closed for this reason so far",
                peer_id,
                reason,
                detail,
                closed[reason],
            )


async def close_dead(conn: Any) -> None:
    """Close a swarm connection to a host that does not answer, without waiting on it:
    the socket first (writes blocked on a full send buffer fail at once), then the
    swarm's close (bounded), which resets the streams and tells the notifees."""
    muxed = getattr(conn, "muxed_conn", None)
    secured = getattr(muxed, "secured_conn", None)
    if secured is not None:
        with trio.move_on_after(1), contextlib.suppress(Exception):
            await secured.close()
    with trio.move_on_after(CLOSE_BUDGET_S), contextlib.suppress(Exception):
        await conn.close()
    if not getattr(conn, "is_closed", False) or conn in _connections_of(conn):
        # The close did not finish in time: at least forget the connection, so that the
        # peer no longer counts as connected and is dialled again.
        with contextlib.suppress(Exception):
            conn.swarm.remove_conn(conn)


def _connections_of(conn: Any) -> list[Any]:
    try:
        return list(conn.swarm.get_connections(conn.muxed_conn.peer_id))
    except Exception:
        return []
