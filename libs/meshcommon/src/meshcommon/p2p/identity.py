"""Ed25519 identities: a persisted 32-byte seed keeps the peer ID across restarts."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

SEED_BYTES = 32


def load_or_create_key_pair(path: str | os.PathLike[str] | None) -> KeyPair:
    """Key pair from the seed at ``path`` (created with mode 0600 if missing);
    with no path, a fresh identity for this process only."""
    if not path:
        return create_new_key_pair(secrets.token_bytes(SEED_BYTES))
    p = Path(path)
    if p.exists():
        seed = p.read_bytes()
        if len(seed) != SEED_BYTES:
            raise ValueError(f"identity file {p} holds {len(seed)} bytes, expected {SEED_BYTES}")
    else:
        p.parent.mkdir(parents=True, exist_ok=True)
        seed = secrets.token_bytes(SEED_BYTES)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(seed)
    return create_new_key_pair(seed)


def peer_id_of(key_pair: KeyPair) -> str:
    return str(ID.from_pubkey(key_pair.public_key).to_base58())
