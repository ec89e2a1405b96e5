"""Decoding gossip payloads: JSON objects with a ``type``; every rejection has a reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from meshcommon.limits import MAX_MESSAGE_BYTES

REASON_OVERSIZED: Final = "oversized"
REASON_INVALID_JSON: Final = "invalid_json"
REASON_NOT_OBJECT: Final = "not_a_json_object"
REJECTION_REASONS: Final = (REASON_OVERSIZED, REASON_INVALID_JSON, REASON_NOT_OBJECT)


@dataclass(frozen=True)
class DecodedGossip:
    type: str
    payload: dict[str, Any]


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


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()
