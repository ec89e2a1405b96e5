"""The peer-side kit shared by the agent and the monitor (no libp2p needed here).

- ``addresses``: the multiaddr policy built from ``PeerSettings``, and the addresses a
  peer advertises.
- ``static_peers``: configured ``.../p2p/<peer_id>`` multiaddrs as bootstrap entries.
- ``bootstrap_client``: WHOOSH's bootstrap list with retries, an on-disk cache and the
  static peers as fallback.
"""
