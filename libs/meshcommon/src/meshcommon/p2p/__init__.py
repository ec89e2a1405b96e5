"""The libp2p runtime shared by the agent and the monitor (extra ``meshcommon[p2p]``).

py-libp2p is trio-only and the services are FastAPI on uvicorn (asyncio). ``MeshRuntime``
is the one place where the two loops meet: the host lives in a trio thread, HTTP handlers
call ``await runtime.snapshot()`` and never see trio.

- ``types``: the values the node takes and hands out (no libp2p import).
- ``node``: ``MeshNode``, the libp2p host + GossipSub, with its fixes of py-libp2p.
- ``runtime``: ``MeshRuntime``, the trio thread driven from asyncio.
- ``errors``: the real cause of a failed dial.
- ``identity``: Ed25519 identities from a persisted seed, or derived from a secret and a scope.
- ``lean``: py-libp2p without the transports and protocols a mesh peer never runs.

The names below are imported on first use, so that ``meshcommon.p2p.types`` and the
pure modules that use it never pay for importing libp2p. Importing this package installs
``lean`` before anything imports libp2p (``MESH_LIBP2P_FULL_IMPORT=1`` turns it off).
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING, Any

from meshcommon.p2p import lean, pin

# Another py-libp2p than the pinned one stops the process here, in one line (exit 1);
# MESH_LIBP2P_UNPINNED=1 makes it a warning, for whoever ports the overrides.
pin.check_libp2p_version()
if os.environ.get("MESH_LIBP2P_FULL_IMPORT", "") not in ("1", "true", "yes"):
    lean.install()

if TYPE_CHECKING:
    from meshcommon.p2p.errors import describe_dial_error, root_cause
    from meshcommon.p2p.node import MeshNode
    from meshcommon.p2p.runtime import MeshRuntime
    from meshcommon.p2p.types import (
        ConnectionView,
        DialFailure,
        DialOutcome,
        KeyProof,
        MeshView,
        NodeConfig,
        NodeCounters,
        NodeSnapshot,
        PingError,
        ReceivedMessage,
        TopicMesh,
    )

_WHERE = {
    "MeshNode": "meshcommon.p2p.node",
    "MeshRuntime": "meshcommon.p2p.runtime",
    "describe_dial_error": "meshcommon.p2p.errors",
    "root_cause": "meshcommon.p2p.errors",
    "ConnectionView": "meshcommon.p2p.types",
    "DialFailure": "meshcommon.p2p.types",
    "DialOutcome": "meshcommon.p2p.types",
    "MeshView": "meshcommon.p2p.types",
    "KeyProof": "meshcommon.p2p.types",
    "NodeConfig": "meshcommon.p2p.types",
    "NodeCounters": "meshcommon.p2p.types",
    "NodeSnapshot": "meshcommon.p2p.types",
    "PingError": "meshcommon.p2p.types",
    "ReceivedMessage": "meshcommon.p2p.types",
    "TopicMesh": "meshcommon.p2p.types",
}

__all__ = [
    "ConnectionView",
    "DialFailure",
    "DialOutcome",
    "KeyProof",
    "MeshNode",
    "MeshRuntime",
    "MeshView",
    "NodeConfig",
    "NodeCounters",
    "NodeSnapshot",
    "PingError",
    "ReceivedMessage",
    "TopicMesh",
    "describe_dial_error",
    "root_cause",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
