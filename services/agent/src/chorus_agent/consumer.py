"""The gossip consumer: what an agent does with each message it receives.

Runs on the libp2p (trio) thread for every message: it must be quick. An exception is
counted and logged by the node (``consumer_errors``), never lost.

With validation on (the default, ``AGENT_VALIDATE_GOSSIP``) the node has already checked
and parsed each message before forwarding it (``msg.decoded``), and reports what it
rejected to ``reject``; without, the consumer decodes and rejects by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from chorus_agent.metrics import AgentMetrics
from meshcommon import topics
from meshcommon.gossip import RejectedGossip, decode
from meshcommon.logs import RateLimitedLog
from meshcommon.p2p.types import ReceivedMessage, RejectedMessage

log = logging.getLogger(__name__)


class GossipConsumer:
    def __init__(
        self,
        metrics: AgentMetrics,
        max_bytes: int,
        learn: Callable[[str, Sequence[str], str], bool] | None = None,
    ) -> None:
        self.metrics, self.max_bytes, self.learn = metrics, max_bytes, learn
        # One line per sender and reason per 10 s: a flood cannot spam the log.
        self._rejections = RateLimitedLog(log, interval_s=10.0)

    def reject(self, rejected: RejectedMessage) -> None:
        """A message the node's validator refused (not forwarded): counted here; the node
        logs it (1st, 10th, 100th, every 1000th per topic and reason)."""
        self.metrics.count_rejected(rejected.topic, rejected.reason)

    def __call__(self, msg: ReceivedMessage) -> None:
        decoded = msg.decoded or decode(msg.data, self.max_bytes)
        if isinstance(decoded, RejectedGossip):
            self.metrics.count_rejected(msg.topic, decoded.reason)
            self._rejections.warning(
                (msg.from_peer, decoded.reason),
                "rejected gossip on %s from %s: %s (%s)",
                msg.topic,
                msg.from_peer,
                decoded.reason,
                decoded.detail,
            )
            return
        self.metrics.count_received(msg.topic, decoded.type)
        payload = decoded.payload
        if (
            self.learn is not None
            and msg.topic == topics.COORDINATION
            and decoded.type == "availability"
            and payload.get("node_id") == msg.from_peer  # only the signer's own addresses
            and isinstance(payload.get("multiaddrs"), list)
        ):
            addrs = [a for a in payload["multiaddrs"] if isinstance(a, str)]
            name = payload.get("name") if isinstance(payload.get("name"), str) else ""
            self.learn(msg.from_peer, addrs, name)
