from __future__ import annotations

import pytest

from meshcommon.gossip import (
    REASON_INVALID_JSON,
    REASON_INVALID_SCHEMA,
    REASON_NODE_ID_NOT_SIGNER,
    REASON_NOT_OBJECT,
    REASON_OVERSIZED,
    REJECTION_REASONS,
    DecodedGossip,
    RejectedGossip,
    decode,
    encode,
    validate,
)
from meshcommon.limits import MAX_MESSAGE_BYTES


def test_decodes_object_with_type() -> None:
    result = decode(b'{"type":"availability","node_id":"a"}')
    assert result == DecodedGossip("availability", {"type": "availability", "node_id": "a"})


@pytest.mark.parametrize("raw", [b'{"node_id":"a"}', b'{"type":""}', b'{"type":3}'])
def test_missing_or_bad_type_is_unknown(raw: bytes) -> None:
    result = decode(raw)
    assert isinstance(result, DecodedGossip)
    assert result.type == "unknown"


def test_oversized() -> None:
    result = decode(b" " * (MAX_MESSAGE_BYTES + 1))
    assert isinstance(result, RejectedGossip)
    assert result.reason == REASON_OVERSIZED
    small = decode(b'{"type":"x","pad":"' + b"a" * 100 + b'"}', max_bytes=50)
    assert isinstance(small, RejectedGossip)
    assert small.reason == REASON_OVERSIZED
    # Exactly at the limit is fine.
    at_limit = b'{"type":"x"}'
    assert isinstance(decode(at_limit, max_bytes=len(at_limit)), DecodedGossip)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"",
        b"\xff\xfe\x00",  # invalid UTF-8
        b'{"type":"\xff"}',  # invalid UTF-8 inside a string
        b"\xff\xfe{\x00}\x00",  # UTF-16: not the wire format
        b"[" * 50_000,  # nested past the recursion limit
    ],
)
def test_invalid_json(raw: bytes) -> None:
    result = decode(raw)
    assert isinstance(result, RejectedGossip)
    assert result.reason == REASON_INVALID_JSON
    assert len(result.detail) <= 200


@pytest.mark.parametrize(("raw", "kind"), [(b"[1,2]", "list"), (b'"x"', "str"), (b"3", "int")])
def test_non_object(raw: bytes, kind: str) -> None:
    result = decode(raw)
    assert result == RejectedGossip(REASON_NOT_OBJECT, f"got {kind}")


def test_encode_round_trip() -> None:
    payload = {"type": "availability", "n": 1, "s": "é"}
    data = encode(payload)
    assert b" " not in data
    assert decode(data) == DecodedGossip("availability", payload)


# -- validate(): what a mesh peer checks before it forwards a message ----------------------
SIGNER = "12D3KooWSigner"


def _availability(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "type": "availability",
        "node_id": SIGNER,
        "available_for_work": True,
        "current_tasks": 0,
        "max_tasks": 2,
        "last_activity": "2026-01-01T00:00:00Z",
        "status": "available",
        "timestamp": "2026-01-01T00:00:01Z",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def test_validate_accepts_a_valid_availability_and_hands_out_its_model() -> None:
    from meshcommon.models import AvailabilityMessage

    result = validate(encode(_availability()), SIGNER)
    assert isinstance(result, DecodedGossip)
    assert result.type == "availability"
    assert isinstance(result.model, AvailabilityMessage)
    assert result.model.node_id == SIGNER


def test_validate_accepts_an_unknown_type_within_the_budget() -> None:
    data = encode({"type": "task_offer_v9", "node_id": "someone else", "x": [1, 2]})
    result = validate(data, SIGNER)
    assert isinstance(result, DecodedGossip)
    assert result.type == "task_offer_v9"
    assert result.model is None
    assert isinstance(validate(b'{"no_type":1}', SIGNER), DecodedGossip)


def test_validate_rejects_oversized_before_parsing() -> None:
    data = encode(_availability(pad="x" * 200))
    result = validate(data, SIGNER, max_bytes=100)
    assert isinstance(result, RejectedGossip)
    assert result.reason == REASON_OVERSIZED


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{this is not json", REASON_INVALID_JSON),
        (b"\xff\xfe", REASON_INVALID_JSON),
        (b"[1,2]", REASON_NOT_OBJECT),
        (b'"availability"', REASON_NOT_OBJECT),
    ],
)
def test_validate_rejects_non_json_and_non_objects(raw: bytes, reason: str) -> None:
    result = validate(raw, SIGNER)
    assert isinstance(result, RejectedGossip)
    assert result.reason == reason


@pytest.mark.parametrize(
    "changes",
    [
        {"node_id": None},  # missing
        {"current_tasks": "many"},
        {"available_for_work": {"a": 1}},
        {"last_activity": "yesterday"},
        {"status": None},
        {"node_id": 42},
    ],
)
def test_validate_rejects_a_known_type_with_a_bad_schema(changes: dict[str, object]) -> None:
    result = validate(encode(_availability(**changes)), SIGNER)
    assert isinstance(result, RejectedGossip)
    assert result.reason == REASON_INVALID_SCHEMA
    assert result.detail.startswith("availability: ")


def test_validate_rejects_a_node_id_that_is_not_the_signer() -> None:
    result = validate(encode(_availability(node_id="12D3KooWSomeoneElse")), SIGNER)
    assert isinstance(result, RejectedGossip)
    assert result.reason == REASON_NODE_ID_NOT_SIGNER
    assert SIGNER in result.detail


def test_every_rejection_reason_is_listed() -> None:
    assert set(REJECTION_REASONS) == {
        REASON_OVERSIZED,
        REASON_INVALID_JSON,
        REASON_NOT_OBJECT,
        REASON_INVALID_SCHEMA,
        REASON_NODE_ID_NOT_SIGNER,
    }
