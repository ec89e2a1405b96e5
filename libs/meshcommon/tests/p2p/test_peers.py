"""peers: peer IDs from text."""

from __future__ import annotations

import pytest

pytest.importorskip("libp2p")

from meshcommon.p2p.peers import parse_peer_id


def test_a_real_peer_id_parses_and_base58_garbage_does_not(peer_id: str) -> None:
    assert str(parse_peer_id(peer_id)) == peer_id
    with pytest.raises(ValueError):
        parse_peer_id("notapeer")
