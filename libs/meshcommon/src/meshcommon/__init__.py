"""Shared by the CHORUS agent, WHOOSH and the HMMM monitor.

- ``topics``: GossipSub topic names (one definition).
- ``multiaddr_policy``: which multiaddrs are worth advertising and dialling.
- ``models``: pydantic models of every wire format.
- ``gossip``: decoding of gossip payloads, with a reason for every rejection.
- ``p2p`` (extra ``meshcommon[p2p]``): the libp2p host + GossipSub runtime and the
  trio/asyncio bridge used by the agent and the monitor.
"""

__version__ = "0.1.0"
