"""What a node sees of its neighbours (``meshcommon.neighbours``): identify data, the
topics each one announced, and each link's quality and traffic. Runs in the node's trio
thread.

Identify: py-libp2p 0.8.1 runs identify on every new connection but keeps only the
protocols (peerstore), not the agent version. ``IdentifyBook`` asks each connected peer
once (``/ipfs/id/1.0.0``, the standard request: go, js and py answer it), bounded in
size and time, and keeps the answer while the peer is connected. It is called from the
periodic ping sweep, so it adds no timer: one stream per new neighbour, nothing while
the neighbours stay the same.

Traffic: bytes each way are the yamux bytes the connection counted (``yamux.LeanYamux``,
None with that override off), messages the gossip messages pubsub counted per peer
(``NodeCounters.messages_in/out``). Rates are over the time since the previous report
(since the connection opened for the first one).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import trio
from libp2p.identity.identify.identify import AGENT_VERSION
from libp2p.identity.identify.identify import ID as IDENTIFY_PROTOCOL
from libp2p.identity.identify.pb.identify_pb2 import Identify
from libp2p.utils.varint import read_length_prefixed_protobuf

from meshcommon.neighbours import (
    MAX_AGENT_VERSION_CHARS,
    MAX_NEIGHBOURS,
    MAX_PROTOCOL_CHARS,
    MAX_PROTOCOLS_PER_NEIGHBOUR,
    Neighbour,
    fit_topics,
)
from meshcommon.p2p.peers import parse_peer_id

MAX_IDENTIFY_BYTES = 64 * 1024  # an identify answer is ~1 KB; upstream allows 1 MiB
IDENTIFY_TIMEOUT_S = 5.0
MAX_IDENTIFIED = 4096  # peers whose identify answer is kept (connected ones first)
IDENTIFY_PER_SWEEP = 8  # identify requests per call, so a flood of peers costs a bound


@dataclass(frozen=True)
class PeerIdentity:
    agent_version: str
    protocols: tuple[str, ...]


def identity_of(msg: Any) -> PeerIdentity:
    """An identify message within the report's budgets (long strings cut or left out)."""
    protocols = [p for p in msg.protocols if len(p) <= MAX_PROTOCOL_CHARS]
    return PeerIdentity(
        str(msg.agent_version)[:MAX_AGENT_VERSION_CHARS],
        tuple(sorted(protocols)[:MAX_PROTOCOLS_PER_NEIGHBOUR]),
    )


class IdentifyBook:
    def __init__(self, host: Any) -> None:
        self.host = host
        self.known: dict[str, PeerIdentity] = {}
        self.failures = 0

    async def identify(self, peer_id: str) -> PeerIdentity | None:
        """Ask ``peer_id`` (connected) who it is; None when it does not answer in time."""
        stream = None
        try:
            with trio.fail_after(IDENTIFY_TIMEOUT_S):
                stream = await self.host.new_stream(parse_peer_id(peer_id), [IDENTIFY_PROTOCOL])
                data = await read_length_prefixed_protobuf(stream, True, MAX_IDENTIFY_BYTES)
            msg = Identify()
            msg.ParseFromString(data)
        except Exception:
            self.failures += 1
            return None
        finally:
            if stream is not None:
                with trio.move_on_after(1), contextlib.suppress(Exception):
                    await stream.close()
        identity = identity_of(msg)
        if len(self.known) >= MAX_IDENTIFIED:
            self.forget_except({str(p) for p in self.host.get_connected_peers()})
            if len(self.known) >= MAX_IDENTIFIED:
                self.known.clear()
        self.known[peer_id] = identity
        return identity

    async def identify_missing(self, peers: Iterable[str]) -> int:
        """Identify up to ``IDENTIFY_PER_SWEEP`` of ``peers`` not known yet; how many."""
        missing = [p for p in peers if p not in self.known][:IDENTIFY_PER_SWEEP]
        for peer in missing:
            await self.identify(peer)
        return len(missing)

    def forget_except(self, connected: set[str]) -> None:
        for peer in [p for p in self.known if p not in connected]:
            del self.known[peer]


class NeighbourReporter:
    """Builds the node's neighbours report; keeps the previous traffic sample per peer
    for the rates."""

    def __init__(self) -> None:
        self._previous: dict[str, tuple[float, int | None, int | None, int, int]] = {}

    def report(
        self, stack: Any, identities: IdentifyBook, known_topics: Sequence[str]
    ) -> tuple[Neighbour, ...]:
        now = time.time()
        host, pubsub, pinger = stack.host, stack.pubsub, stack.pinger
        counters = stack.counters
        conns = host.get_network().get_connections_map()
        connected = {}
        for pid, conns_of_peer in conns.items():
            open_conns = [c for c in conns_of_peer if not getattr(c, "is_closed", False)]
            if open_conns:
                connected[str(pid)] = (pid, open_conns)
        topics_of: dict[str, list[str]] = {}
        for topic, peers in pubsub.peer_topics.items():
            for pid in peers:
                topics_of.setdefault(str(pid), []).append(topic)
        # Peers of another build first: what the monitor most wants to know.
        ours = AGENT_VERSION

        def sort_key(peer: str) -> tuple[bool, str]:
            known = identities.known.get(peer)
            return (known is not None and known.agent_version == ours, peer)

        listed = sorted(connected, key=sort_key)[:MAX_NEIGHBOURS]
        out = []
        samples: dict[str, tuple[float, int | None, int | None, int, int]] = {}
        for peer in listed:
            pid, open_conns = connected[peer]
            conn = open_conns[0]
            opened = getattr(conn, "_created_at", None)
            muxed = getattr(conn, "muxed_conn", None)
            b_in = getattr(muxed, "bytes_in", None)
            b_out = getattr(muxed, "bytes_out", None)
            m_in, m_out = counters.messages_in.get(pid, 0), counters.messages_out.get(pid, 0)
            sample = samples[peer] = (now, b_in, b_out, m_in, m_out)
            before = self._previous.get(peer)
            if before is None or (opened is not None and before[0] < opened):
                before = (opened if opened is not None else now, 0, 0, 0, 0)
            rates = [_rate(sample[i], before[i], now - before[0]) for i in (1, 2, 3, 4)]

            identity = identities.known.get(peer)
            rtt, loss, pings = pinger.link(peer)
            topics, omitted = fit_topics(topics_of.get(peer, []), known_topics)
            out.append(
                Neighbour(
                    peer_id=peer,
                    agent_version=identity.agent_version if identity else "",
                    protocols=identity.protocols
                    if identity and identity.agent_version != ours
                    else (),
                    topics=topics,
                    topics_omitted=omitted,
                    rtt_ms=rtt,
                    loss=loss,
                    pings=pings,
                    uptime_s=None if opened is None else max(0.0, now - opened),
                    bytes_in_per_s=rates[0],
                    bytes_out_per_s=rates[1],
                    messages_in_per_s=rates[2],
                    messages_out_per_s=rates[3],
                )
            )
        self._previous = samples
        return tuple(out)


def forget_gone(stack: Any, identities: IdentifyBook) -> None:
    """Drop what is kept per peer (message counts, ping windows, identify answers) for
    peers no longer connected: anyone can mint peer IDs and connect once."""
    alive = {str(p) for p in stack.host.get_connected_peers()}
    counters = stack.counters
    for table in (counters.messages_in, counters.messages_out):
        for pid in [p for p in table if str(p) not in alive]:
            del table[pid]
    stack.pinger.forget_except(alive)
    identities.forget_except(alive)


def _rate(now_value: float | None, before: float | None, elapsed: float) -> float | None:
    if now_value is None or before is None or elapsed <= 0:
        return None
    return max(0.0, (now_value - before) / elapsed)
