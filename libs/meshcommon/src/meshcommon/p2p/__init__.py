"""The libp2p runtime shared by the agent and the monitor (extra ``meshcommon[p2p]``).

py-libp2p is trio-only and the services are FastAPI on uvicorn (asyncio). ``MeshRuntime``
is the one place where the two loops meet: the host lives in a trio thread, HTTP handlers
call ``await runtime.snapshot()`` and never see trio.
"""

from meshcommon.p2p.errors import describe_dial_error, root_cause
from meshcommon.p2p.node import (
    DialOutcome,
    MeshNode,
    NodeConfig,
    NodeSnapshot,
    PingError,
    ReceivedMessage,
)
from meshcommon.p2p.runtime import MeshRuntime

__all__ = [
    "DialOutcome",
    "MeshNode",
    "MeshRuntime",
    "NodeConfig",
    "NodeSnapshot",
    "PingError",
    "ReceivedMessage",
    "describe_dial_error",
    "root_cause",
]
