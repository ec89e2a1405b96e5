"""The libp2p runtime shared by the agent and the monitor (extra ``meshcommon[p2p]``).

py-libp2p is trio-only and the services are FastAPI on uvicorn (asyncio). ``MeshRuntime``
is the one place where the two loops meet: the host lives in a trio thread, HTTP handlers
call ``await runtime.snapshot()`` and never see trio. ``MeshNode`` is the one public class
of the node itself.

The map, one job per module:

- ``types``: the values the node takes and hands out, ``P2POverrides`` (no libp2p import).
- ``runtime``: ``MeshRuntime``, the trio thread driven from asyncio.
- ``node``: ``MeshNode``: its life (``serve``), delivery to the consumer, what it counts.
- ``host``: building one node's stack (transports, host, GossipSub, Pubsub, scoring,
  validators), installing the overrides through the door at each stage.
- ``overrides``: **the one door**: the registry of every run-time replacement of py-libp2p
  behaviour (flag, upstream names, install function), ``apply``, and the fingerprints of
  every upstream source they copy (``UPSTREAM``).
- ``dial``: dialling a peer (bounded) and proving who holds a key (handshake only).
- ``ping``: libp2p ping, timed on our clock; remembers each peer's last RTT.
- ``views``: the node's snapshot and mesh view.
- ``neighbours``: what the node sees of each neighbour (identify asked once per connection,
  topics, ping RTT/loss, traffic counted by ``yamux`` and ``pubsub``; with the ``yamux`` or
  ``inline`` override off, bytes or received messages are not counted), for the report in
  the agents' broadcasts (``meshcommon.neighbours``).
- ``peers``: peer IDs from text; is a peer connected.
- ``liveness``: connections to a host that vanished (no FIN/RST) closed and counted:
  after pings fail in a row, or when the peer comes back on a newer connection.
- ``errors``: the real cause of a failed dial, and who answered a mismatched one.
- ``identity``: Ed25519 identities from a persisted seed, or derived from a secret and a scope.
- ``validation``: the mesh's gossip rules as a topic validator.
- ``pnet``: libp2p private networks (XSalsa20, as go/js/kubo), a transport wrapper chosen by
  configuration (``NodeConfig.pnet_keys``), not an override.
- ``pin``: the py-libp2p version the overrides are written against, checked at import.
- ``lean``: py-libp2p without the transports and protocols a mesh peer never runs.
- The overrides' code: ``tcp``, ``yamux``, ``multiselect``, ``records``, ``pubsub``,
  ``scoring``, ``ping`` (below).

Every override, by flag (``*_P2P_OVERRIDES``: ``all``, ``none``, a list, ``all,-name``;
each registered in ``overrides.OVERRIDES`` with what it replaces and why):

- ``tcp``: buffered socket reads (``tcp.BufferedTCP``)
- ``yamux``: go-yamux window updates, batched frame loop (``yamux.LeanYamux``)
- ``inline``: pubsub RPCs handled in the read loop (``pubsub.MeshPubsub``)
- ``record``: signed peer records checked once per distinct bytes (``records``)
- ``sig``: origin keys cached, own publishes not re-verified (``records``)
- ``novalcache`` (formerly ``lean``): ``push_msg`` without the validation cache
- ``noforward``: no RPC built with nobody to forward to (``pubsub.MeshGossipSub``)
- ``direct``: messages to the consumer without a channel hop
- ``coalesce``: RPCs queued for a peer written at once
- ``mss``: multistream-select in one round trip (``multiselect``)
- ``ping``: one ping stream per peer, reused (``ping.Pinger``)
- ``graylist``: GossipSub v1.1 graylist enforced, P4 squared (``scoring``)
- ``noautodial``: the swarm's AutoConnector dials nothing
- ``retry``: one dial retry after 50 ms
- ``outqueue``, ``subqueue``: the outbound and subscription queues sized per node
- ``idontwant``: GossipSub v1.2 IDONTWANT as js-libp2p sends it, budgeted, honoured and
  counted (``pubsub.MeshGossipSub``)
- ``stalestream``: a pubsub stream that died with a dead connection while the peer speaks
  on a newer one moves to it, the peer's subscriptions kept (``pubsub.MeshPubsub``)
- ``heard``: a message a peer sent us is not sent back to it from its queue
  (``pubsub.MeshGossipSub.heard``)
- ``steadymesh``: the configured heartbeat and mesh bounds (upstream's adaptive gossip
  off), opportunistic grafting as GossipSub v1.1 has it (``pubsub.MeshGossipSub``)

Importing this package checks the py-libp2p version (``pin``: another one stops the
process, ``MESH_LIBP2P_UNPINNED=1`` to port) and installs ``lean`` before anything imports
libp2p (``MESH_LIBP2P_FULL_IMPORT=1`` turns it off). The names below are imported on
first use, so that ``meshcommon.p2p.types`` and the pure modules that use it never pay
for importing libp2p.
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
