"""Shared by the CHORUS agent, WHOOSH and the HMMM monitor.

- ``topics``: GossipSub topic names (one definition).
- ``multiaddr_policy``: which multiaddrs are worth advertising and dialling.
- ``models``: pydantic models of every wire format.
- ``gossip``: decoding of gossip payloads, with a reason for every rejection.
- ``config``: the settings every service (``ServiceSettings``) and every peer
  (``PeerSettings``) shares.
- ``peer``: the peer-side kit of the agent and the monitor (bootstrap client with
  retries and cache, static peers, advertised addresses).
- ``logs``, ``serve``, ``aio``, ``metrics``, ``waiting``: one way to log, serve, stop
  tasks, export counters and wait for a condition.
- ``p2p`` (extra ``meshcommon[p2p]``): the libp2p host + GossipSub runtime and the
  trio/asyncio bridge used by the agent and the monitor.
"""
