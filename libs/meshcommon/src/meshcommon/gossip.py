"""Decoding and validating gossip payloads: JSON objects with a ``type``; every rejection
has a reason.

``decode`` is what a consumer needs (size, JSON, an object). ``validate`` is what a mesh
peer checks before it forwards a message (meshcommon.p2p.validation runs it as a GossipSub
topic validator): ``decode``, then the schema of a known ``type`` and, where the type names
its sender (``node_id``), that the sender is the message's signer. An unknown ``type``
within the size budget is valid: newer peers may publish types this version does not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from meshcommon.limits import MAX_MESSAGE_BYTES
from meshcommon.models import AvailabilityMessage

REASON_OVERSIZED: Final = "oversized"
REASON_INVALID_JSON: Final = "invalid_json"
REASON_NOT_OBJECT: Final = "not_a_json_object"
# validate() only: a known type whose fields do not match its model; a node_id that is
# not the peer that signed the message (someone speaking for another peer).
REASON_INVALID_SCHEMA: Final = "invalid_schema"
REASON_NODE_ID_NOT_SIGNER: Final = "node_id_not_signer"
REJECTION_REASONS: Final = (
    REASON_OVERSIZED,
    REASON_INVALID_JSON,
    REASON_NOT_OBJECT,
    REASON_INVALID_SCHEMA,
    REASON_NODE_ID_NOT_SIGNER,
)

# Every message type the product publishes, with its model. Today one: agents publish
# ``availability`` on CHORUS/coordination/v1 (workers/broadcaster.py); nothing in the
# product publishes on hmmm/meta-discussion/v1 or CHORUS/context-feedback/v1 yet. A type
# means the same on every topic. Types whose model has a ``node_id`` name their sender.
KNOWN_TYPES: Final[dict[str, type[BaseModel]]] = {"availability": AvailabilityMessage}


@dataclass(frozen=True)
class DecodedGossip:
    type: str
    payload: dict[str, Any]
    # With validate(): the payload parsed into the model of its known type (None for an
    # unknown type), so that a consumer does not parse it a second time.
    model: BaseModel | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RejectedGossip:
    reason: str
    detail: str


def decode(data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> DecodedGossip | RejectedGossip:
    """Decode one gossip payload; never raises."""
    if len(data) > max_bytes:
        return RejectedGossip(REASON_OVERSIZED, f"{len(data)} bytes > limit {max_bytes}")
    try:
        # Explicit UTF-8: json.loads(bytes) would also accept UTF-16/32.
        payload = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested arrays
        return RejectedGossip(REASON_INVALID_JSON, str(exc)[:200])
    if not isinstance(payload, dict):
        return RejectedGossip(REASON_NOT_OBJECT, f"got {type(payload).__name__}")
    kind = payload.get("type")
    return DecodedGossip(kind if isinstance(kind, str) and kind else "unknown", payload)


def validate(
    data: bytes, signer: str, max_bytes: int = MAX_MESSAGE_BYTES
) -> DecodedGossip | RejectedGossip:
    """``decode`` plus the rules of the known types: the payload must fit the type's model
    and, where the model has a ``node_id``, name ``signer`` (the base58 peer ID whose key
    signed the message: an agent's ``node_id`` is its peer ID). Never raises."""
    decoded = decode(data, max_bytes)
    if isinstance(decoded, RejectedGossip):
        return decoded
    model_type = KNOWN_TYPES.get(decoded.type)
    if model_type is None:
        return decoded  # unknown type: forward compatibility
    try:
        model = model_type.model_validate(decoded.payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
            for e in exc.errors()[:3]
        )
        return RejectedGossip(REASON_INVALID_SCHEMA, f"{decoded.type}: {problems}"[:200])
    node_id = getattr(model, "node_id", None)
    if node_id is not None and node_id != signer:
        return RejectedGossip(
            REASON_NODE_ID_NOT_SIGNER, f"node_id {str(node_id)[:60]!r} signed by {signer}"
        )
    return DecodedGossip(decoded.type, decoded.payload, model)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()
