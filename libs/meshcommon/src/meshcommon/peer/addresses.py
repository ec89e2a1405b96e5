"""Which addresses a peer advertises and dials, from its ``PeerSettings``."""

from __future__ import annotations

from collections.abc import Sequence

from meshcommon.config import PeerSettings
from meshcommon.multiaddr_policy import FilterResult, MultiaddrPolicy, parse_networks
from meshcommon.netinfo import interface_networks, listen_ips


def policy_for(settings: PeerSettings) -> MultiaddrPolicy:
    """The one multiaddr policy of a peer: configured CIDRs plus the networks of
    ``overlay_interface``; with ``overlay_only``, nothing outside them."""
    nets = parse_networks(settings.overlay_cidrs)
    if settings.overlay_interface:
        nets += interface_networks(settings.overlay_interface)
    return MultiaddrPolicy(
        nets,
        allow_loopback=settings.allow_loopback,
        strict_overlay=settings.overlay_only and bool(nets),
    )


def advertised_multiaddrs(
    settings: PeerSettings,
    policy: MultiaddrPolicy,
    peer_id: str,
    ips: Sequence[str] | None = None,
) -> FilterResult:
    """Routable multiaddrs of this peer, each ending in /p2p/<peer_id>. Explicit
    ``announce_addrs`` win (NAT, host-mode ports); otherwise the interfaces' addresses."""
    if settings.announce_addrs:
        return policy.filter(settings.announce_addrs, peer_id)
    found = listen_ips(settings.p2p_host) if ips is None else ips
    return policy.advertise(found, settings.p2p_port, peer_id)
