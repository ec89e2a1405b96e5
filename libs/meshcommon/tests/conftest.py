"""Shared fixtures for meshcommon tests.

libp2p tests ``importorskip("libp2p")`` so that meshcommon's pure tests run without the
``p2p`` extra. ``make test`` sets ``CHORUS_REQUIRE_LIBP2P=1`` (libp2p is always in the dev
venv): then a libp2p that cannot be imported fails the run instead of skipping those tests.
"""

from __future__ import annotations

import os

import pytest

# meshcommon.p2p installs its lean py-libp2p import on first import, which must come before
# any test module imports libp2p itself (as the services' imports do).
import meshcommon.p2p  # noqa: F401

if os.environ.get("CHORUS_REQUIRE_LIBP2P") == "1" or os.environ.get("CHORUS_REQUIRE_ENGINE") == "1":
    try:
        import libp2p  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the failure this guards against
        raise pytest.UsageError(
            f"libp2p cannot be imported ({exc}) and CHORUS_REQUIRE_LIBP2P=1 (make test): "
            "meshcommon's libp2p tests would skip silently"
        ) from exc


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
