"""Ed25519 identities: from a persisted seed file, or derived from a secret and a scope.

- A seed file (``identity_path``) keeps one process's peer ID across restarts on one host.
- A secret and a scope (``identity_secret_file`` + ``identity_scope``) give the same peer ID
  wherever the process runs, with no storage at all. On Docker Swarm the secret is a Swarm
  secret and the scope is ``<service name>/<task slot>``: a slot that Swarm moves to another
  node comes back as the same peer. The seed is HKDF-SHA256 of the secret, with the scope in
  HKDF's ``info``: another scope (slot) or another secret gives an unrelated key, and neither
  a peer ID nor a key reveals the secret or another slot's key.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

log = logging.getLogger(__name__)

SEED_BYTES = 32
# A shorter secret would be the weakest part of every derived key: 32 bytes is what
# `openssl rand -base64 32` prints (44 characters), the README's recipe.
MIN_SECRET_BYTES = 32
# Domain separation: the same secret used for anything else never yields these seeds.
DERIVATION_CONTEXT = b"chorus-mesh/peer-identity/v1\x00"


class IdentityError(ValueError):
    """An identity that cannot be loaded or derived; the message names the file and the
    fix, never the secret."""


def derive_seed(secret: bytes, scope: str) -> bytes:
    """The 32-byte Ed25519 seed of ``scope`` under ``secret`` (HKDF-SHA256, no salt: the
    secret is already uniformly random, and the scope is the per-key context)."""
    if len(secret) < MIN_SECRET_BYTES:
        raise IdentityError(
            f"identity secret holds {len(secret)} bytes, at least {MIN_SECRET_BYTES} needed"
        )
    if not scope:
        raise IdentityError("identity scope is empty")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=SEED_BYTES,
        salt=None,
        info=DERIVATION_CONTEXT + scope.encode(),
    )
    return hkdf.derive(secret)


def read_secret(path: str | os.PathLike[str]) -> bytes:
    """The secret in ``path`` without its trailing line break (``echo`` and ``openssl``
    add one; with or without it, the same identity)."""
    p = Path(path)
    try:
        secret = p.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise IdentityError(
            f"identity secret file {p} cannot be read: {exc.strerror or type(exc).__name__}"
        ) from exc
    if len(secret) < MIN_SECRET_BYTES:
        raise IdentityError(
            f"identity secret file {p} holds {len(secret)} bytes, at least "
            f"{MIN_SECRET_BYTES} needed (e.g. `openssl rand -base64 32`)"
        )
    return secret


def derived_key_pair(secret_file: str | os.PathLike[str], scope: str) -> KeyPair:
    """The key pair of ``scope`` under the secret in ``secret_file``."""
    return create_new_key_pair(derive_seed(read_secret(secret_file), scope))


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


def node_key_pair(
    identity_path: str | None, secret_file: str | None = None, scope: str = ""
) -> KeyPair:
    """The identity a node runs with: derived when a secret file is configured, else from
    the seed file, else fresh."""
    if secret_file:
        key_pair = derived_key_pair(secret_file, scope)
        log.info("identity derived for scope %r from the secret in %s", scope, secret_file)
        return key_pair
    return load_or_create_key_pair(identity_path)


def peer_id_of(key_pair: KeyPair) -> str:
    return str(ID.from_pubkey(key_pair.public_key).to_base58())
