from __future__ import annotations

import stat
from pathlib import Path

import pytest

pytest.importorskip("libp2p")

from meshcommon.p2p.identity import (
    DERIVATION_CONTEXT,
    SEED_BYTES,
    IdentityError,
    derive_seed,
    derived_key_pair,
    load_or_create_key_pair,
    node_key_pair,
    peer_id_of,
)


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


# -- identities derived from a secret and a scope (a Swarm task slot) ----------------------
SECRET = b"k7Q2mC9vXw4pL8sT1nB6yR3fH0jD5gZa"  # 32 bytes (`openssl rand -base64 24`)


def _secret_file(tmp_path: Path, content: bytes = SECRET, name: str = "chorus_identity") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_same_secret_and_scope_same_peer_id_anywhere(tmp_path: Path) -> None:
    # Two "nodes" with their own copy of the Swarm secret: the slot is the same peer.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    node_a, node_b = _secret_file(tmp_path / "a"), _secret_file(tmp_path / "b")
    a = peer_id_of(derived_key_pair(node_a, "CHORUS_chorus/3"))
    b = peer_id_of(derived_key_pair(node_b, "CHORUS_chorus/3"))
    assert a == b and a.startswith("12D3KooW")
    assert node_key_pair(None, str(node_a), "CHORUS_chorus/3").public_key.to_bytes() == (
        derived_key_pair(node_b, "CHORUS_chorus/3").public_key.to_bytes()
    )


def test_trailing_newline_of_the_secret_does_not_matter(tmp_path: Path) -> None:
    # `echo ... | docker secret create` adds one, `printf` does not: one identity either way.
    plain = _secret_file(tmp_path, SECRET, "plain")
    echoed = _secret_file(tmp_path, SECRET + b"\n", "echoed")
    crlf = _secret_file(tmp_path, SECRET + b"\r\n", "crlf")
    ids = {peer_id_of(derived_key_pair(p, "CHORUS_chorus/1")) for p in (plain, echoed, crlf)}
    assert len(ids) == 1


def test_another_slot_service_or_secret_is_another_peer(tmp_path: Path) -> None:
    secret = _secret_file(tmp_path)
    rotated = _secret_file(tmp_path, b"Z" + SECRET[1:], "rotated")
    ids = {
        peer_id_of(derived_key_pair(secret, "CHORUS_chorus/1")),
        peer_id_of(derived_key_pair(secret, "CHORUS_chorus/2")),
        peer_id_of(derived_key_pair(secret, "CHORUS_chorus/12")),
        peer_id_of(derived_key_pair(secret, "CHORUS_chorus-gateway/1")),
        peer_id_of(derived_key_pair(secret, "OTHER_chorus/1")),
        peer_id_of(derived_key_pair(rotated, "CHORUS_chorus/1")),
    }
    assert len(ids) == 6


def test_derivation_is_hkdf_sha256_with_the_scope_as_info() -> None:
    # Pinned vector: a change of the derivation would silently give every slot a new peer
    # ID on the next rollout. Recomputed with the RFC 5869 construction from hmac.
    import hashlib
    import hmac

    info = DERIVATION_CONTEXT + b"CHORUS_chorus/3"
    prk = hmac.new(b"\x00" * 32, SECRET, hashlib.sha256).digest()
    okm = hmac.new(prk, info + b"\x01", hashlib.sha256).digest()
    assert derive_seed(SECRET, "CHORUS_chorus/3") == okm
    assert len(okm) == SEED_BYTES


@pytest.mark.parametrize("content", [b"", b"\n", b"hunter2", b"Xq7" * 10 + b"z"])
def test_short_secret_is_a_clear_error_without_the_secret(tmp_path: Path, content: bytes) -> None:
    path = _secret_file(tmp_path, content)
    size = len(content.rstrip(b"\n"))
    with pytest.raises(IdentityError, match=rf"{path} holds {size} bytes, at least 32") as err:
        derived_key_pair(path, "CHORUS_chorus/1")
    if size:
        assert content.decode().strip() not in str(err.value)


def test_missing_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match=r"nope cannot be read: No such file"):
        derived_key_pair(tmp_path / "nope", "CHORUS_chorus/1")


def test_empty_scope_is_refused() -> None:
    with pytest.raises(IdentityError, match="scope is empty"):
        derive_seed(SECRET, "")


def test_secret_file_wins_only_when_set(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.key"
    from_seed = peer_id_of(node_key_pair(str(seed_file)))
    assert peer_id_of(node_key_pair(str(seed_file), None, "")) == from_seed
    derived = peer_id_of(node_key_pair(None, str(_secret_file(tmp_path)), "CHORUS_chorus/1"))
    assert derived != from_seed


def test_a_node_configured_with_secret_and_scope_runs_with_the_slot_identity(
    tmp_path: Path,
) -> None:
    from meshcommon.config import PeerSettings
    from meshcommon.p2p.node import MeshNode
    from meshcommon.p2p.types import NodeConfig

    secret = _secret_file(tmp_path)
    settings = PeerSettings(identity_secret_file=str(secret), identity_scope=" CHORUS_chorus/4 ")
    node = MeshNode(NodeConfig.for_peer(settings))
    assert node.peer_id == peer_id_of(derived_key_pair(secret, "CHORUS_chorus/4"))
