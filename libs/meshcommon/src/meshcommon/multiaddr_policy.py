"""Which multiaddrs a peer should advertise, and which ones are worth dialling.

A host has many addresses and most of them are useless to a peer elsewhere: advertising
``/ip4/127.0.0.1/...`` next to the overlay address makes whoever picks "the first one"
dial itself. The rule: advertise only what another host can dial (never loopback,
unspecified or link-local), prefer the configured overlay network, and allow loopback only
when asked to (local development). An address that fails the policy is skipped with a
reason; nothing raises.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from multiaddr import Multiaddr

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Rejection reasons: stable strings, used as metric labels and in API responses.
REASON_INVALID: Final = "invalid_multiaddr"
REASON_NO_IP: Final = "no_ip_component"
REASON_NO_TCP: Final = "no_tcp_port"
REASON_LOOPBACK: Final = "loopback"
REASON_UNSPECIFIED: Final = "unspecified"
REASON_LINK_LOCAL: Final = "link_local"
REASON_MULTICAST: Final = "multicast"
REASON_OUTSIDE_OVERLAY: Final = "outside_overlay"
REASON_MISSING_PEER_ID: Final = "missing_peer_id"
REASON_PEER_ID_MISMATCH: Final = "peer_id_mismatch"


@dataclass(frozen=True)
class AcceptedAddr:
    """A multiaddr that passed the policy, normalised to end in ``/p2p/<peer_id>``."""

    multiaddr: str
    ip: IPAddress
    port: int
    rank: int  # lower is better: 0 overlay, 1 other routable, 2 loopback (if allowed)


@dataclass(frozen=True)
class RejectedAddr:
    multiaddr: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class FilterResult:
    accepted: tuple[AcceptedAddr, ...] = ()
    rejected: tuple[RejectedAddr, ...] = ()

    @property
    def multiaddrs(self) -> list[str]:
        """Accepted multiaddrs, most preferred first."""
        return [a.multiaddr for a in self.accepted]


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDR strings (``10.0.13.0/24``); raises ValueError naming the bad one."""
    nets: list[IPNetwork] = []
    for raw in cidrs:
        text = raw.strip()
        if not text:
            continue
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"invalid overlay CIDR {text!r}: {exc}") from exc
    return tuple(nets)


@dataclass(frozen=True)
class MultiaddrPolicy:
    """Decides which addresses are dialable from other hosts.

    ``overlay_networks`` empty means "any routable address"; non-empty means "only these
    networks" when ``strict_overlay`` is set, else "these first".
    """

    overlay_networks: tuple[IPNetwork, ...] = ()
    allow_loopback: bool = False
    strict_overlay: bool = False

    @classmethod
    def from_settings(
        cls,
        overlay_cidrs: Sequence[str] = (),
        allow_loopback: bool = False,
        strict_overlay: bool = False,
    ) -> MultiaddrPolicy:
        return cls(parse_networks(overlay_cidrs), allow_loopback, strict_overlay)

    # -- IP level -------------------------------------------------------------------
    def ip_rank(self, ip: IPAddress) -> int | str:
        """Rank of a dialable IP (lower is better), or the reason it is not dialable."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            # ``::ffff:127.0.0.1`` is loopback, but Python 3.11 does not say so.
            return self.ip_rank(ip.ipv4_mapped)
        if ip.is_unspecified:
            return REASON_UNSPECIFIED
        if ip.is_loopback:
            return 2 if self.allow_loopback else REASON_LOOPBACK
        if ip.is_link_local:
            return REASON_LINK_LOCAL
        if ip.is_multicast:
            return REASON_MULTICAST
        if any(ip in net for net in self.overlay_networks):
            return 0
        if self.overlay_networks and self.strict_overlay:
            return REASON_OUTSIDE_OVERLAY
        return 1

    # -- multiaddr level --------------------------------------------------------------
    def evaluate(self, addr: str, peer_id: str | None = None) -> AcceptedAddr | RejectedAddr:
        """Check one multiaddr. With ``peer_id``, the result ends in ``/p2p/<peer_id>``
        and an address naming another peer is rejected (a wrong ``/p2p/`` component is
        exactly the "peer id mismatch" a dial through a Swarm VIP ends in)."""
        try:
            ma = Multiaddr(addr)
            protos = [p.name for p in ma.protocols()]
        except Exception as exc:  # the multiaddr library raises several types
            return RejectedAddr(addr, REASON_INVALID, str(exc))
        ip_proto = next((p for p in protos if p in ("ip4", "ip6")), None)
        if ip_proto is None:
            return RejectedAddr(addr, REASON_NO_IP, "need /ip4 or /ip6")
        if "tcp" not in protos:
            return RejectedAddr(addr, REASON_NO_TCP, "need /tcp/<port>")
        ip = ipaddress.ip_address(ma.value_for_protocol(ip_proto))
        port = int(ma.value_for_protocol("tcp"))
        rank = self.ip_rank(ip)
        if isinstance(rank, str):
            return RejectedAddr(addr, rank, str(ip))
        named = ma.value_for_protocol("p2p") if "p2p" in protos else None
        if peer_id is not None and named is not None and named != peer_id:
            return RejectedAddr(addr, REASON_PEER_ID_MISMATCH, f"names {named}, expected {peer_id}")
        if named is None:
            if peer_id is None:
                return RejectedAddr(addr, REASON_MISSING_PEER_ID, "no /p2p/<peer_id> component")
            ma = ma.encapsulate(Multiaddr(f"/p2p/{peer_id}"))
        # The canonical text form, so that spellings of one address deduplicate.
        return AcceptedAddr(str(ma), ip, port, rank)

    def filter(self, addrs: Iterable[str], peer_id: str | None = None) -> FilterResult:
        """Evaluate many multiaddrs: accepted ones deduplicated and ordered best-first."""
        accepted: dict[str, AcceptedAddr] = {}
        rejected: list[RejectedAddr] = []
        for addr in addrs:
            verdict = self.evaluate(addr, peer_id)
            if isinstance(verdict, RejectedAddr):
                rejected.append(verdict)
            else:
                accepted.setdefault(verdict.multiaddr, verdict)
        ordered = sorted(accepted.values(), key=lambda a: (a.rank, a.ip.version, a.ip.packed))
        return FilterResult(tuple(ordered), tuple(rejected))

    def advertise(self, ips: Iterable[str], port: int, peer_id: str) -> FilterResult:
        """The multiaddrs a host listening on ``port`` should advertise, given its IPs."""
        addrs = []
        bad_ips: list[RejectedAddr] = []
        for ip_text in ips:
            try:
                ip = ipaddress.ip_address(ip_text.split("%", 1)[0])
            except ValueError as exc:
                bad_ips.append(RejectedAddr(ip_text, REASON_INVALID, str(exc)))
                continue
            proto = "ip4" if ip.version == 4 else "ip6"
            addrs.append(f"/{proto}/{ip}/tcp/{port}/p2p/{peer_id}")
        result = self.filter(addrs, peer_id)
        return FilterResult(result.accepted, (*bad_ips, *result.rejected))
