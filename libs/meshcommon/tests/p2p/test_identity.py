from __future__ import annotations

import stat
from pathlib import Path

import pytest

pytest.importorskip("libp2p")

from meshcommon.p2p.identity import SEED_BYTES, load_or_create_key_pair, peer_id_of


def test_persisted_seed_gives_same_peer_id(tmp_path: Path) -> None:
    path = tmp_path / "state" / "identity.key"
    first = peer_id_of(load_or_create_key_pair(path))
    assert path.exists()
    assert len(path.read_bytes()) == SEED_BYTES
    second = peer_id_of(load_or_create_key_pair(str(path)))
    assert first == second
    assert first.startswith("12D3KooW")  # Ed25519 peer IDs are identity-multihash encoded


def test_identity_file_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    load_or_create_key_pair(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_length_file_is_clear_error(tmp_path: Path, size: int) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(b"\x01" * size)
    with pytest.raises(ValueError, match=rf"holds {size} bytes, expected {SEED_BYTES}"):
        load_or_create_key_pair(path)
    assert path.read_bytes() == b"\x01" * size  # never overwritten


def test_no_path_gives_fresh_identity() -> None:
    a = peer_id_of(load_or_create_key_pair(None))
    b = peer_id_of(load_or_create_key_pair(None))
    c = peer_id_of(load_or_create_key_pair(""))
    assert len({a, b, c}) == 3


def test_different_files_different_ids(tmp_path: Path) -> None:
    a = peer_id_of(load_or_create_key_pair(tmp_path / "a.key"))
    b = peer_id_of(load_or_create_key_pair(tmp_path / "b.key"))
    assert a != b
