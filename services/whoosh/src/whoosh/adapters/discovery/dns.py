"""DNS discovery: every A/AAAA record of ``tasks.<service>`` (Swarm) or a headless service.

The service name itself resolves to the Swarm VIP: one address that load-balances, so each
lookup would reach "some" agent. ``tasks.<service>`` returns one record per task; all of
them are used.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from whoosh.adapters.discovery.base import http_url
from whoosh.domain.targets import AgentTarget, DiscoveryResult

# name -> IP strings. Raises OSError (socket.gaierror) when the name does not resolve.
Resolver = Callable[[str], Awaitable[list[str]]]


async def getaddrinfo_resolver(name: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class DnsSource:
    name = "dns"

    def __init__(self, dns_name: str, port: int, resolver: Resolver | None = None) -> None:
        self.dns_name = dns_name
        self.port = port
        self._resolve = resolver or getaddrinfo_resolver

    async def discover(self) -> DiscoveryResult:
        try:
            ips = await self._resolve(self.dns_name)
        except OSError as exc:  # NXDOMAIN, no network, ...: a reported state, not a crash
            return DiscoveryResult((), None, self.name, f"cannot resolve {self.dns_name}: {exc}")
        seen: dict[str, AgentTarget] = {}
        for ip in ips:
            ip = ip.split("%", 1)[0]  # drop an IPv6 zone id
            url = http_url(ip, self.port)
            seen.setdefault(url, AgentTarget(url=url, name=ip, address=ip))
        # DNS cannot say how many agents should exist, only how many records there are.
        return DiscoveryResult(tuple(seen.values()), None, self.name)
