"""The gossip callback: runs on the trio thread for every message, so it is quick. An
exception is counted and logged by the node (``consumer_errors``), never lost.

The monitor is a GossipSub peer: it forwards what it receives. So it validates like an
agent (``MONITOR_VALIDATE_GOSSIP``, on by default): garbage goes no further than the
monitor (an agent would otherwise mark the monitor as the forwarder of invalid messages
and graylist it). What the validator rejects still reaches ``reject``, so the monitor
counts and names garbage senders as before; valid messages arrive parsed once
(``msg.decoded``)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from pydantic import ValidationError

from hmmm_monitor.domain.store import MessageStore
from hmmm_monitor.metrics import MonitorMetrics
from meshcommon.gossip import RejectedGossip, decode
from meshcommon.limits import MAX_MESSAGE_BYTES
from meshcommon.logs import RateLimitedLog
from meshcommon.models import AvailabilityMessage, MonitorLogRecord
from meshcommon.neighbours import Neighbour, RejectedReport, parse_report
from meshcommon.p2p.types import ReceivedMessage, RejectedMessage
from meshcommon.topics import COORDINATION

log = logging.getLogger(__name__)


class GossipConsumer:
    """``on_message`` for MeshNode: decode, store, count, and log one JSON line per message."""

    def __init__(
        self,
        store: MessageStore,
        metrics: MonitorMetrics | None = None,
        *,
        max_bytes: int = MAX_MESSAGE_BYTES,
        log_to_stdout: bool = True,
        stdout: TextIO | None = None,
        invalid_log_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.log_to_stdout = log_to_stdout
        self._stdout = stdout
        # One line per sender and reason per interval: a flood cannot spam the log, and a
        # second kind of bad input from the same sender is still reported.
        self._invalid = RateLimitedLog(log, invalid_log_interval_s, clock=clock)

    def reject(self, rejected: RejectedMessage) -> None:
        """A message the node's validator refused (not forwarded): counted and its sender
        named, as a message this consumer rejects itself."""
        self.store.reject(rejected.reason, rejected.from_peer, rejected.received_at, rejected.seqno)
        if self.metrics is not None:
            self.metrics.messages_rejected.labels(reason=rejected.reason).inc()
        self._invalid.warning(
            (rejected.from_peer, rejected.reason),
            "rejected gossip message: topic=%s from=%s via=%s reason=%s detail=%s",
            rejected.topic,
            rejected.from_peer,
            rejected.forwarder,
            rejected.reason,
            rejected.detail,
        )

    def __call__(self, msg: ReceivedMessage) -> None:
        decoded = msg.decoded or decode(msg.data, self.max_bytes)
        if isinstance(decoded, RejectedGossip):
            self.store.reject(decoded.reason, msg.from_peer, msg.received_at, msg.seqno)
            if self.metrics is not None:
                self.metrics.messages_rejected.labels(reason=decoded.reason).inc()
            self._log_invalid(msg, decoded)
            return
        record = MonitorLogRecord(
            timestamp=datetime.fromtimestamp(msg.received_at, UTC),
            topic=msg.topic,
            from_=msg.from_peer,
            type=decoded.type,
            payload=decoded.payload,
            seqno=msg.seqno,
        )
        self.store.add(record, msg.received_at, size=len(msg.data), raw=bytes(msg.data))
        if self.metrics is not None:
            self.metrics.count_received(msg.topic, decoded.type)
        if msg.topic == COORDINATION and decoded.type == "availability":
            try:
                avail = (
                    decoded.model
                    if isinstance(decoded.model, AvailabilityMessage)
                    else AvailabilityMessage.model_validate(decoded.payload)
                )
            except ValidationError:
                pass  # still a logged message; it just adds nothing to the topology
            else:
                # The model defaults a missing timestamp to "now": only a timestamp the
                # sender wrote says anything about delivery latency (on its clock).
                latency_ms = None
                if "timestamp" in decoded.payload:
                    sent = avail.timestamp
                    if sent.tzinfo is None:
                        sent = sent.replace(tzinfo=UTC)  # the wire convention is UTC
                    latency_ms = (msg.received_at - sent.timestamp()) * 1000
                neighbours, refused = self._neighbours(msg.from_peer, avail.neighbours)
                self.store.add_availability(
                    msg.from_peer,
                    # The raw report is not kept: what was validated is, below.
                    avail
                    if avail.neighbours is None
                    else avail.model_copy(update={"neighbours": None}),
                    msg.received_at,
                    latency_ms=latency_ms,
                    reports_peers="peers" in decoded.payload,
                    neighbours=neighbours,
                    neighbours_rejected=refused,
                )
        if self.log_to_stdout:
            out = self._stdout or sys.stdout
            out.write(record.to_json_line() + "\n")
            out.flush()

    def _neighbours(self, sender: str, raw: object) -> tuple[tuple[Neighbour, ...], str | None]:
        """An agent's neighbours report, validated (peer-controlled: budgets and types);
        a refused one is counted by reason and logged once per sender and reason."""
        if raw is None:
            return (), None
        try:
            report = parse_report(raw)
        except RejectedReport as exc:
            if self.metrics is not None:
                self.metrics.neighbour_reports.labels(result=exc.reason).inc()
            self._invalid.warning(
                (sender, "neighbours:" + exc.reason),
                "refused neighbours report: from=%s reason=%s detail=%s",
                sender,
                exc.reason,
                exc.detail,
            )
            return (), exc.reason
        if self.metrics is not None:
            self.metrics.observe_neighbours(report)
        return report, None

    def _log_invalid(self, msg: ReceivedMessage, rejected: RejectedGossip) -> None:
        self._invalid.warning(
            (msg.from_peer, rejected.reason),
            "rejected gossip message: topic=%s from=%s reason=%s detail=%s",
            msg.topic,
            msg.from_peer,
            rejected.reason,
            rejected.detail,
        )
