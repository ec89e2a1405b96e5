from __future__ import annotations

import pytest

from meshcommon.gossip import (
    REASON_INVALID_JSON,
    REASON_NOT_OBJECT,
    REASON_OVERSIZED,
    DecodedGossip,
    RejectedGossip,
    decode,
    encode,
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
