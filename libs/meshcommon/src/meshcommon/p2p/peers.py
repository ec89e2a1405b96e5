"""Peer IDs from text, and whether a host has an open connection to one."""

from __future__ import annotations

from typing import Any

from libp2p.peer.id import ID
from multiaddr import Multiaddr


def parse_peer_id(peer_id: str) -> ID:
    """A peer ID from its text, or ValueError. ``ID.from_base58`` accepts any base58 text
    ("notapeer"); the multiaddr codec checks that it is a real multihash."""
    try:
        Multiaddr(f"/p2p/{peer_id}")
        return ID.from_base58(peer_id)
    except Exception as exc:
        raise ValueError(str(exc)) from exc


def is_connected(host: Any, pid: ID) -> bool:
    conns = host.get_network().get_connections(pid)
    return any(not getattr(c, "is_closed", False) for c in conns)
