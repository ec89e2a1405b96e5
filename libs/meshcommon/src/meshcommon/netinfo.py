"""Local interface addresses (psutil), for agents listening on 0.0.0.0."""

from __future__ import annotations

import ipaddress
import socket

import psutil

from meshcommon.multiaddr_policy import IPNetwork


def local_ips() -> list[str]:
    """Every IPv4/IPv6 address on this host's interfaces."""
    ips: list[str] = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                ips.append(a.address.split("%", 1)[0])
    return ips


def interface_networks(name: str) -> tuple[IPNetwork, ...]:
    """The networks configured on interface ``name`` (empty if it does not exist)."""
    nets: list[IPNetwork] = []
    for a in psutil.net_if_addrs().get(name, []):
        if a.family in (socket.AF_INET, socket.AF_INET6) and a.netmask:
            ip = a.address.split("%", 1)[0]
            nets.append(ipaddress.ip_network(f"{ip}/{a.netmask}", strict=False))
    return tuple(nets)


def listen_ips(listen_host: str) -> list[str]:
    """The IPs a socket bound to ``listen_host`` is reachable on."""
    if listen_host in ("0.0.0.0", "::", ""):
        return local_ips()
    return [listen_host]
