"""The gossip consumer: what an agent does with each message it receives.

Runs on the libp2p (trio) thread for every message: it must be quick and never raise.
"""

from __future__ import annotations

import logging
import time

from chorus_agent.metrics import AgentMetrics
from meshcommon.gossip import RejectedGossip, decode
from meshcommon.p2p import ReceivedMessage

log = logging.getLogger(__name__)


class GossipConsumer:
    def __init__(self, metrics: AgentMetrics, max_bytes: int) -> None:
        self.metrics, self.max_bytes = metrics, max_bytes
        self.last_heard: dict[str, float] = {}
        self._last_warned: dict[tuple[str, str], float] = {}

    def __call__(self, msg: ReceivedMessage) -> None:
        decoded = decode(msg.data, self.max_bytes)
        if isinstance(decoded, RejectedGossip):
            self.metrics.rejected.labels(reason=decoded.reason).inc()
            now = time.monotonic()
            key = (msg.from_peer, decoded.reason)  # one line per sender+reason per 10 s
            if now - self._last_warned.get(key, 0.0) > 10.0:
                self._last_warned[key] = now
                log.warning(
                    "rejected gossip on %s from %s: %s (%s)",
                    msg.topic,
                    msg.from_peer,
                    decoded.reason,
                    decoded.detail,
                )
            return
        self.metrics.received.labels(topic=msg.topic, type=decoded.type).inc()
        self.last_heard[msg.from_peer] = msg.received_at
