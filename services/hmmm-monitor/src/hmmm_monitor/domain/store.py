"""What the monitor has heard: recent messages, per-sender stats, rejections, availability.

Written from the trio thread (the gossip callback) and read from asyncio (HTTP handlers),
so every access holds one ``threading.Lock``. Critical sections are short: appends and
dict updates while writing, shallow copies while reading.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field, replace

from hmmm_monitor.domain.delivery import DeliveryView, SeqnoTracker, delivery_view, latency_window
from meshcommon.limits import MAX_KEPT_MESSAGE_BYTES, MAX_TRACKED_SENDERS
from meshcommon.models import AvailabilityMessage, MonitorLogRecord
from meshcommon.neighbours import Neighbour

# What a kept message costs beyond its payload's bytes (the record, its timestamp and
# strings, the deque slot), counted against the byte cap so that the cap bounds memory
# also for many small messages. Measured with tracemalloc: ~1,150 bytes.
STORED_OVERHEAD_BYTES = 1200


@dataclass(frozen=True)
class StoredMessage:
    """A kept message: the record without its payload, and the payload as received.

    The payload stays as its raw JSON bytes and is parsed only when shown: parsed, a
    50 KB message of 600 multiaddrs took 1.65 times its size in Python objects (600
    strings, a list, a dict), so 16 MiB of kept payload held ~27 MiB plus the
    allocator's fragments; raw, the byte cap is what it costs."""

    record: MonitorLogRecord
    received_at: float  # unix time
    size: int = 0  # bytes of the gossip payload as received
    raw: bytes | None = None  # the payload's JSON (None: the record carries the payload)

    def to_dict(self) -> dict[str, object]:
        doc = self.record.model_dump(mode="json", by_alias=True)
        if self.raw is not None:
            doc["payload"] = json.loads(self.raw)
        doc["received_at"] = self.received_at
        return doc


@dataclass
class SenderStats:
    peer_id: str
    first_heard: float
    last_heard: float
    count: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)
    last_by_topic: dict[str, float] = field(default_factory=dict)  # who publishes where
    rejected: int = 0


@dataclass(frozen=True)
class AvailabilityReport:
    """An agent's latest availability broadcast: its ``peers`` are the topology's edges."""

    peer_id: str  # origin of the gossip message (signed), not the self-declared node_id
    message: AvailabilityMessage
    received_at: float
    # Whether the message carried a ``peers`` field at all: CHORUS agents always do (an
    # empty list when isolated); a peer of another implementation may send availability
    # without it, and its silence says nothing about whom it is connected to.
    reports_peers: bool = True
    # What it reports of its neighbours (meshcommon.neighbours), validated; why the last
    # report was refused (a REJECT_* reason), None when it was accepted or absent.
    neighbours: tuple[Neighbour, ...] = ()
    neighbours_rejected: str | None = None


class MessageStore:
    """Bounded in every direction: ``keep`` recent messages of at most ``max_bytes``
    together, and per-sender figures for at most ``max_senders`` senders. Anyone can mint
    peer IDs and sign gossip with them, so the sender heard from longest ago is forgotten
    first (figures, seqno tracking, latency and availability alike); a real agent
    broadcasting every period stays."""

    def __init__(
        self,
        keep: int = 5000,
        *,
        max_bytes: int = MAX_KEPT_MESSAGE_BYTES,
        max_senders: int = MAX_TRACKED_SENDERS,
    ) -> None:
        self._lock = threading.Lock()
        self.keep = keep
        self.max_bytes = max_bytes
        self._messages: deque[StoredMessage] = deque()
        self._kept_bytes = 0
        self.max_senders = max_senders
        self.senders_forgotten = 0
        # Ordered by last activity (least recent first): what goes when the cap is hit.
        self._senders: OrderedDict[str, SenderStats] = OrderedDict()
        self._rejected: Counter[str] = Counter()
        self._availability: dict[str, AvailabilityReport] = {}
        self._seqnos: dict[str, SeqnoTracker] = {}
        self._latency: dict[str, deque[float]] = {}
        self.total = 0

    # -- writes (trio thread) -----------------------------------------------------------
    def add(
        self, record: MonitorLogRecord, received_at: float, size: int = 0, raw: bytes | None = None
    ) -> None:
        """``size``: the payload's bytes as received (counted against ``max_bytes``);
        ``raw``: those bytes (valid JSON), kept instead of the record's parsed payload."""
        if raw is not None:
            record = record.model_copy(update={"payload": None})
        stored = StoredMessage(record, received_at, size, raw)
        with self._lock:
            self._messages.append(stored)
            self._kept_bytes += size + STORED_OVERHEAD_BYTES
            # The oldest go first; the newest message always stays.
            while len(self._messages) > 1 and (
                len(self._messages) > self.keep or self._kept_bytes > self.max_bytes
            ):
                self._kept_bytes -= self._messages.popleft().size + STORED_OVERHEAD_BYTES
            self.total += 1
            stats = self._sender(record.from_, received_at)
            stats.last_heard = max(stats.last_heard, received_at)
            stats.count += 1
            stats.by_topic[record.topic] += 1
            stats.last_by_topic[record.topic] = received_at
            self._track_seqno(record.from_, record.seqno, received_at)

    def add_availability(
        self,
        peer_id: str,
        message: AvailabilityMessage,
        at: float,
        *,
        latency_ms: float | None = None,
        reports_peers: bool = True,
        neighbours: tuple[Neighbour, ...] = (),
        neighbours_rejected: str | None = None,
    ) -> None:
        """``latency_ms``: receive time minus the sender's own ``timestamp`` (sender clock);
        ``reports_peers``: the message had a ``peers`` field."""
        with self._lock:
            self._sender(peer_id, at)  # keeps this map within the senders tracked
            self._availability[peer_id] = AvailabilityReport(
                peer_id, message, at, reports_peers, neighbours, neighbours_rejected
            )
            if latency_ms is not None:
                window = self._latency.get(peer_id)
                if window is None:
                    window = self._latency[peer_id] = latency_window()
                window.append(latency_ms)

    def reject(self, reason: str, sender: str, at: float, seqno: str = "") -> None:
        """A rejected message still proves the sender is alive, but it is not "heard":
        coverage counts only peers whose messages we could read. It did arrive, so it
        still counts for the sender's seqno (loss) accounting."""
        with self._lock:
            self._rejected[reason] += 1
            self._sender(sender, at).rejected += 1
            self._track_seqno(sender, seqno, at)

    def _track_seqno(self, sender: str, seqno: str, at: float) -> None:
        """Caller holds the lock. A few integer operations per message."""
        if not seqno:
            return
        try:
            value = int(seqno, 16)
        except ValueError:
            return
        tracker = self._seqnos.get(sender)
        if tracker is None:
            tracker = self._seqnos[sender] = SeqnoTracker()
        tracker.observe(value, now=at)

    def _sender(self, peer_id: str, at: float) -> SenderStats:
        """Caller holds the lock. The sender's figures, now the most recently active."""
        stats = self._senders.get(peer_id)
        if stats is not None:
            self._senders.move_to_end(peer_id)
            return stats
        # last_heard 0 until a valid message arrives.
        stats = self._senders[peer_id] = SenderStats(peer_id, at, 0.0)
        while len(self._senders) > self.max_senders:
            gone, _ = self._senders.popitem(last=False)
            self._seqnos.pop(gone, None)
            self._latency.pop(gone, None)
            self._availability.pop(gone, None)
            self.senders_forgotten += 1
        return stats

    def kept_bytes(self) -> int:
        """What the kept messages count against ``max_bytes`` (payloads and overhead)."""
        with self._lock:
            return self._kept_bytes

    def tracked_senders(self) -> int:
        with self._lock:
            return len(self._senders)

    # -- reads (asyncio) ----------------------------------------------------------------
    def recent(
        self,
        *,
        topic: str | None = None,
        sender: str | None = None,
        type_: str | None = None,
        limit: int = 100,
    ) -> list[StoredMessage]:
        """Newest first."""
        with self._lock:
            snapshot = list(self._messages)
        out: list[StoredMessage] = []
        for msg in reversed(snapshot):
            r = msg.record
            if topic and r.topic != topic:
                continue
            if sender and r.from_ != sender:
                continue
            if type_ and r.type != type_:
                continue
            out.append(msg)
            if len(out) >= limit:
                break
        return out

    def senders(self) -> dict[str, SenderStats]:
        with self._lock:
            return {
                pid: SenderStats(
                    s.peer_id,
                    s.first_heard,
                    s.last_heard,
                    s.count,
                    Counter(s.by_topic),
                    dict(s.last_by_topic),
                    rejected=s.rejected,
                )
                for pid, s in self._senders.items()
            }

    def heard_since(self, since: float) -> set[str]:
        with self._lock:
            return {pid for pid, s in self._senders.items() if s.count and s.last_heard >= since}

    def topic_publishers(self, since: float) -> dict[str, set[str]]:
        """Per topic, the senders of valid messages received at or after ``since``."""
        publishers: dict[str, set[str]] = {}
        with self._lock:
            for pid, stats in self._senders.items():
                for topic, at in stats.last_by_topic.items():
                    if at >= since:
                        publishers.setdefault(topic, set()).add(pid)
        return publishers

    def rejected_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._rejected)

    def availability(self) -> dict[str, AvailabilityReport]:
        with self._lock:
            return dict(self._availability)

    def delivery(self) -> dict[str, DeliveryView]:
        """Per sender: seqno loss accounting and median delivery latency."""
        with self._lock:  # copy under the lock, compute medians outside it
            copies = {
                pid: (
                    replace(t) if (t := self._seqnos.get(pid)) is not None else None,
                    tuple(self._latency.get(pid, ())),
                )
                for pid in self._seqnos.keys() | self._latency.keys()
            }
        return {pid: delivery_view(t, lat) for pid, (t, lat) in copies.items()}

    def gaps_total(self) -> int:
        """Messages ever counted lost, all senders (only grows: for the Prometheus counter;
        ``delivery()`` gives the per-sender figures net of late arrivals)."""
        with self._lock:
            return sum(t.gaps for t in self._seqnos.values())
