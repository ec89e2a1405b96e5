"""Shared fixtures for meshcommon tests."""

from __future__ import annotations

import pytest

# meshcommon.p2p installs its lean py-libp2p import on first import, which must come before
# any test module imports libp2p itself (as the services' imports do).
import meshcommon.p2p  # noqa: F401


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """The services, the peer kit and MeshRuntime's callers run on asyncio (uvicorn);
    a module testing trio code (the libp2p node itself) says ``trio`` for itself."""
    return "asyncio"


@pytest.fixture(scope="session")
def peer_id() -> str:
    """A real Ed25519 peer ID (the policy compares /p2p/ components as text)."""
    pytest.importorskip("libp2p")
    from meshcommon.p2p.identity import load_or_create_key_pair, peer_id_of

    return peer_id_of(load_or_create_key_pair(None))


@pytest.fixture(scope="session")
def other_peer_id() -> str:
    pytest.importorskip("libp2p")
    from meshcommon.p2p.identity import load_or_create_key_pair, peer_id_of

    return peer_id_of(load_or_create_key_pair(None))
