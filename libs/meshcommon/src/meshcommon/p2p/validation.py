"""The mesh's gossip rules (``meshcommon.gossip.validate``) as a py-libp2p topic validator.

``Pubsub.push_msg`` runs a topic's validators after the signature check and before the
message is marked seen, delivered or forwarded: a rejected message goes nowhere, and the
peer that forwarded it gets an invalid-message mark (GossipSub v1.1 P4, see ``scoring``).
The validator is synchronous (no task per message) and parses each message once: what it
parsed is handed to the consumer with the message (``take``), which does not parse again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from meshcommon.gossip import DecodedGossip, RejectedGossip, validate
from meshcommon.p2p.types import NodeCounters, RejectedMessage

log = logging.getLogger(__name__)

# Messages validated and not yet delivered (the subscription channel in between without
# the ``direct`` override): bounded, so that messages dropped on the way cannot grow it.
MAX_PENDING_DECODED = 4096


def worth_logging(count: int) -> bool:
    """The 1st, 10th, 100th and every 1000th occurrence."""
    return count in (1, 10, 100) or count % 1000 == 0


class GossipValidator:
    """``validator(forwarder, msg) -> bool`` for ``Pubsub.set_topic_validator(topic, v,
    is_async_validator=False)`` on each of the node's topics. Rejections are counted by
    (topic, reason) in ``counters.rejected``, logged (1st, 10th, 100th, every 1000th per
    topic and reason) and passed to ``on_rejected`` (the monitor names garbage senders)."""

    def __init__(
        self,
        counters: NodeCounters,
        origin: Callable[[bytes], str],
        *,
        max_bytes: int,
        on_rejected: Callable[[RejectedMessage], None] | None = None,
    ) -> None:
        self.counters = counters
        self._origin = origin
        self.max_bytes = max_bytes
        self.on_rejected = on_rejected
        # id(msg) -> (msg, what it decoded to); holding msg keeps its id unique.
        self._pending: dict[int, tuple[rpc_pb2.Message, DecodedGossip]] = {}
        self._last: tuple[Any, DecodedGossip | RejectedGossip] | None = None

    def __call__(self, forwarder: ID, msg: rpc_pb2.Message) -> bool:
        last = self._last
        if last is not None and last[0] is msg:
            # One message with several of our topics: validated once, judged once.
            return isinstance(last[1], DecodedGossip)
        origin = self._origin(msg.from_id)
        verdict = validate(msg.data, origin, self.max_bytes)
        self._last = (msg, verdict)
        if isinstance(verdict, DecodedGossip):
            pending = self._pending
            if len(pending) >= MAX_PENDING_DECODED:
                pending.clear()  # their consumers decode again: slower, never wrong
            pending[id(msg)] = (msg, verdict)
            return True
        self._reject(forwarder, msg, origin, verdict)
        return False

    def take(self, msg: rpc_pb2.Message) -> DecodedGossip | None:
        """What ``msg`` was decoded to when it was validated (once; None if unknown)."""
        entry = self._pending.pop(id(msg), None)
        if entry is None or entry[0] is not msg:
            return None
        return entry[1]

    def _reject(
        self, forwarder: ID, msg: rpc_pb2.Message, origin: str, verdict: RejectedGossip
    ) -> None:
        topics = list(msg.topicIDs) or [""]
        rejected = self.counters.rejected
        for topic in topics:
            key = (topic, verdict.reason)
            rejected[key] += 1
            if worth_logging(rejected[key]):
                log.warning(
                    "rejected gossip on %s from %s (via %s): %s (%s); %d so far for this "
                    "reason; not forwarded",
                    topic,
                    origin,
                    forwarder,
                    verdict.reason,
                    verdict.detail,
                    rejected[key],
                )
        if self.on_rejected is not None:
            event = RejectedMessage(
                topic=topics[0],
                from_peer=origin,
                forwarder=str(forwarder),
                reason=verdict.reason,
                detail=verdict.detail,
                seqno=bytes(msg.seqno).hex(),
                received_at=time.time(),
            )
            try:
                self.on_rejected(event)
            except Exception:
                log.exception("on_rejected callback failed")
