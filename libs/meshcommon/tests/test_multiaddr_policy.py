from __future__ import annotations

import ipaddress

import pytest

from meshcommon.multiaddr_policy import (
    REASON_INVALID,
    REASON_LINK_LOCAL,
    REASON_LOOPBACK,
    REASON_MISSING_PEER_ID,
    REASON_MULTICAST,
    REASON_NO_IP,
    REASON_NO_TCP,
    REASON_OUTSIDE_OVERLAY,
    REASON_PEER_ID_MISMATCH,
    REASON_UNSPECIFIED,
    AcceptedAddr,
    MultiaddrPolicy,
    RejectedAddr,
    parse_networks,
)

DEFAULT = MultiaddrPolicy()


@pytest.mark.parametrize(
    ("addr", "reason"),
    [
        ("/ip4/127.0.0.1/tcp/9000", REASON_LOOPBACK),
        ("/ip4/127.8.9.10/tcp/9000", REASON_LOOPBACK),
        ("/ip6/::1/tcp/9000", REASON_LOOPBACK),
        ("/ip6/::ffff:127.0.0.1/tcp/9000", REASON_LOOPBACK),  # IPv4-mapped loopback
        ("/ip4/0.0.0.0/tcp/9000", REASON_UNSPECIFIED),
        ("/ip6/::/tcp/9000", REASON_UNSPECIFIED),
        ("/ip4/169.254.10.20/tcp/9000", REASON_LINK_LOCAL),
        ("/ip6/fe80::1/tcp/9000", REASON_LINK_LOCAL),
        ("/ip4/224.0.0.251/tcp/9000", REASON_MULTICAST),
        ("/ip6/ff02::1/tcp/9000", REASON_MULTICAST),
    ],
)
def test_undialable_addresses_rejected_with_reason(addr: str, reason: str, peer_id: str) -> None:
    verdict = DEFAULT.evaluate(addr, peer_id)
    assert isinstance(verdict, RejectedAddr)
    assert verdict.reason == reason
    assert verdict.multiaddr == addr


def test_loopback_accepted_only_when_allowed(peer_id: str) -> None:
    addr = "/ip4/127.0.0.1/tcp/9000"
    assert DEFAULT.evaluate(addr, peer_id) == RejectedAddr(addr, REASON_LOOPBACK, "127.0.0.1")
    verdict = MultiaddrPolicy(allow_loopback=True).evaluate(addr, peer_id)
    assert isinstance(verdict, AcceptedAddr)
    assert verdict.rank == 2
    assert verdict.multiaddr == f"{addr}/p2p/{peer_id}"
    # allow_loopback never lets unspecified or link-local through
    lenient = MultiaddrPolicy(allow_loopback=True)
    unspecified = lenient.evaluate("/ip4/0.0.0.0/tcp/9000", peer_id)
    assert isinstance(unspecified, RejectedAddr)
    assert unspecified.reason == REASON_UNSPECIFIED


def test_loopback_ranked_after_routable(peer_id: str) -> None:
    policy = MultiaddrPolicy(allow_loopback=True)
    result = policy.filter(["/ip4/127.0.0.1/tcp/9000", "/ip4/192.168.1.5/tcp/9000"], peer_id)
    assert [a.rank for a in result.accepted] == [1, 2]
    assert result.multiaddrs[0].startswith("/ip4/192.168.1.5/")


def test_overlay_preferred_first(peer_id: str) -> None:
    policy = MultiaddrPolicy.from_settings(["10.0.13.0/24"])
    result = policy.filter(
        ["/ip4/172.18.0.4/tcp/9000", "/ip4/10.0.13.7/tcp/9000", "/ip4/192.168.0.2/tcp/9000"],
        peer_id,
    )
    assert result.multiaddrs[0] == f"/ip4/10.0.13.7/tcp/9000/p2p/{peer_id}"
    assert [a.rank for a in result.accepted] == [0, 1, 1]
    assert result.rejected == ()


def test_strict_overlay_rejects_others(peer_id: str) -> None:
    policy = MultiaddrPolicy.from_settings(["10.0.13.0/24", "fd00:13::/64"], strict_overlay=True)
    result = policy.filter(
        [
            "/ip4/172.18.0.4/tcp/9000",
            "/ip4/10.0.13.7/tcp/9000",
            "/ip6/fd00:13::7/tcp/9000",
            "/ip6/2001:db8::1/tcp/9000",
        ],
        peer_id,
    )
    assert result.multiaddrs == [
        f"/ip4/10.0.13.7/tcp/9000/p2p/{peer_id}",
        f"/ip6/fd00:13::7/tcp/9000/p2p/{peer_id}",
    ]
    assert {(r.multiaddr, r.reason) for r in result.rejected} == {
        ("/ip4/172.18.0.4/tcp/9000", REASON_OUTSIDE_OVERLAY),
        ("/ip6/2001:db8::1/tcp/9000", REASON_OUTSIDE_OVERLAY),
    }


def test_strict_overlay_without_networks_accepts_routable(peer_id: str) -> None:
    policy = MultiaddrPolicy(strict_overlay=True)
    assert isinstance(policy.evaluate("/ip4/172.18.0.4/tcp/9000", peer_id), AcceptedAddr)


def test_ipv6_accepted_and_ordered_after_ipv4(peer_id: str) -> None:
    result = DEFAULT.filter(["/ip6/2001:db8::1/tcp/9000", "/ip4/192.0.2.1/tcp/9000"], peer_id)
    assert result.multiaddrs == [
        f"/ip4/192.0.2.1/tcp/9000/p2p/{peer_id}",
        f"/ip6/2001:db8::1/tcp/9000/p2p/{peer_id}",
    ]
    v6 = result.accepted[1]
    assert v6.ip == ipaddress.IPv6Address("2001:db8::1")
    assert v6.port == 9000


@pytest.mark.parametrize(
    "addr",
    [
        "garbage",
        "/ip4/999.1.1.1/tcp/1",
        "/ip4/1.2.3.4/tcp/9000/p2p/notapeer",
        "/ip4/1.2.3.4/tcp/99999",
        "/ip4/1.2.3.4/tcp/notaport",
        "/unknownproto/1",
    ],
)
def test_invalid_multiaddr_skipped_never_raises(addr: str, peer_id: str) -> None:
    for pid in (peer_id, None):
        verdict = DEFAULT.evaluate(addr, pid)
        assert isinstance(verdict, RejectedAddr)
        assert verdict.reason == REASON_INVALID
        assert verdict.detail
    good = "/ip4/192.0.2.1/tcp/9000"
    result = DEFAULT.filter([addr, good], peer_id)
    assert result.multiaddrs == [f"{good}/p2p/{peer_id}"]
    assert [r.reason for r in result.rejected] == [REASON_INVALID]


def test_no_ip_or_no_tcp(peer_id: str) -> None:
    no_ip = DEFAULT.evaluate("/dns4/agent/tcp/9000", peer_id)
    assert isinstance(no_ip, RejectedAddr)
    assert no_ip.reason == REASON_NO_IP
    no_tcp = DEFAULT.evaluate("/ip4/192.0.2.1/udp/9000", peer_id)
    assert isinstance(no_tcp, RejectedAddr)
    assert no_tcp.reason == REASON_NO_TCP


def test_peer_id_mismatch(peer_id: str, other_peer_id: str) -> None:
    addr = f"/ip4/192.0.2.1/tcp/9000/p2p/{other_peer_id}"
    verdict = DEFAULT.evaluate(addr, peer_id)
    assert isinstance(verdict, RejectedAddr)
    assert verdict.reason == REASON_PEER_ID_MISMATCH
    assert other_peer_id in verdict.detail
    assert peer_id in verdict.detail
    # The right /p2p/ component is kept as is.
    ok = DEFAULT.evaluate(f"/ip4/192.0.2.1/tcp/9000/p2p/{peer_id}", peer_id)
    assert isinstance(ok, AcceptedAddr)
    assert ok.multiaddr == f"/ip4/192.0.2.1/tcp/9000/p2p/{peer_id}"


def test_missing_p2p_appended(peer_id: str) -> None:
    for addr in ("/ip4/192.0.2.1/tcp/9000", "/ip4/192.0.2.1/tcp/9000/"):
        verdict = DEFAULT.evaluate(addr, peer_id)
        assert isinstance(verdict, AcceptedAddr)
        assert verdict.multiaddr == f"/ip4/192.0.2.1/tcp/9000/p2p/{peer_id}"


def test_missing_p2p_without_expected_peer_rejected(peer_id: str) -> None:
    verdict = DEFAULT.evaluate("/ip4/192.0.2.1/tcp/9000")
    assert isinstance(verdict, RejectedAddr)
    assert verdict.reason == REASON_MISSING_PEER_ID
    # With its own /p2p/ component, no expected peer is needed.
    named = DEFAULT.evaluate(f"/ip4/192.0.2.1/tcp/9000/p2p/{peer_id}")
    assert isinstance(named, AcceptedAddr)


def test_duplicates_removed(peer_id: str) -> None:
    result = DEFAULT.filter(
        [
            "/ip4/192.0.2.1/tcp/9000",
            f"/ip4/192.0.2.1/tcp/9000/p2p/{peer_id}",
            "/ip4/192.0.2.1/tcp/9000",
            "/ip6/2001:db8::1/tcp/9000",
            "/ip6/2001:DB8:0:0::1/tcp/9000",  # same address, other spelling
        ],
        peer_id,
    )
    assert result.multiaddrs == [
        f"/ip4/192.0.2.1/tcp/9000/p2p/{peer_id}",
        f"/ip6/2001:db8::1/tcp/9000/p2p/{peer_id}",
    ]
    assert result.rejected == ()


def test_advertise_from_local_ips(peer_id: str) -> None:
    policy = MultiaddrPolicy.from_settings(["10.0.13.0/24"])
    ips = ["127.0.0.1", "::1", "172.18.0.4", "10.0.13.7", "fe80::42:acff:fe12:4%eth0", "0.0.0.0"]
    result = policy.advertise(ips, 9000, peer_id)
    assert result.multiaddrs == [
        f"/ip4/10.0.13.7/tcp/9000/p2p/{peer_id}",
        f"/ip4/172.18.0.4/tcp/9000/p2p/{peer_id}",
    ]
    reasons = sorted(r.reason for r in result.rejected)
    assert reasons == sorted([REASON_LOOPBACK, REASON_LOOPBACK, REASON_LINK_LOCAL, "unspecified"])
    assert all(r.multiaddr.endswith(f"/p2p/{peer_id}") for r in result.rejected)


def test_advertise_reports_unparseable_ip(peer_id: str) -> None:
    result = DEFAULT.advertise(["not-an-ip", "192.0.2.1"], 9000, peer_id)
    assert result.multiaddrs == [f"/ip4/192.0.2.1/tcp/9000/p2p/{peer_id}"]
    assert [(r.multiaddr, r.reason) for r in result.rejected] == [("not-an-ip", REASON_INVALID)]


def test_advertise_loopback_for_local_dev(peer_id: str) -> None:
    result = MultiaddrPolicy(allow_loopback=True).advertise(["127.0.0.2"], 9100, peer_id)
    assert result.multiaddrs == [f"/ip4/127.0.0.2/tcp/9100/p2p/{peer_id}"]


def test_parse_networks() -> None:
    nets = parse_networks(["10.0.13.0/24", " ", "", "fd00::/8", "10.0.14.5/24"])
    assert [str(n) for n in nets] == ["10.0.13.0/24", "fd00::/8", "10.0.14.0/24"]


def test_parse_networks_error_names_bad_cidr() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.300\.0/24"):
        parse_networks(["10.0.13.0/24", "10.0.300.0/24"])
    with pytest.raises(ValueError, match="overlay-net"):
        MultiaddrPolicy.from_settings(["overlay-net"])
