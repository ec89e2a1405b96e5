from meshcommon.config import PeerSettings
from meshcommon.peer.addresses import advertised_multiaddrs, policy_for

PID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
IPS = ["10.231.0.7", "172.21.0.8", "127.0.0.1"]


def test_with_an_overlay_configured_only_overlay_addresses_are_advertised() -> None:
    """On Swarm a task also has a docker_gwbridge address (172.x) that only its own node
    can reach; advertising it would make peers on other nodes fail over into a timeout."""
    settings = PeerSettings(overlay_cidrs=["10.231.0.0/16"])
    strict = policy_for(settings)
    assert advertised_multiaddrs(settings, strict, PID, ips=IPS).multiaddrs == [
        f"/ip4/10.231.0.7/tcp/9000/p2p/{PID}"
    ]
    lenient = policy_for(PeerSettings(overlay_cidrs=["10.231.0.0/16"], overlay_only=False))
    assert advertised_multiaddrs(settings, lenient, PID, ips=IPS).multiaddrs == [
        f"/ip4/10.231.0.7/tcp/9000/p2p/{PID}",
        f"/ip4/172.21.0.8/tcp/9000/p2p/{PID}",
    ]


def test_without_an_overlay_every_routable_address_and_loopback_only_when_allowed() -> None:
    settings = PeerSettings()
    assert advertised_multiaddrs(settings, policy_for(settings), PID, ips=IPS).multiaddrs == [
        f"/ip4/10.231.0.7/tcp/9000/p2p/{PID}",
        f"/ip4/172.21.0.8/tcp/9000/p2p/{PID}",
    ]
    local = PeerSettings(allow_loopback=True, p2p_port=9100)
    assert advertised_multiaddrs(local, policy_for(local), PID, ips=IPS).multiaddrs == [
        f"/ip4/10.231.0.7/tcp/9100/p2p/{PID}",
        f"/ip4/172.21.0.8/tcp/9100/p2p/{PID}",
        f"/ip4/127.0.0.1/tcp/9100/p2p/{PID}",
    ]


def test_announced_addresses_replace_the_interfaces_ones() -> None:
    settings = PeerSettings(announce_addrs=["/ip4/203.0.113.9/tcp/4001"])
    assert advertised_multiaddrs(settings, policy_for(settings), PID, ips=IPS).multiaddrs == [
        f"/ip4/203.0.113.9/tcp/4001/p2p/{PID}"
    ]


def test_the_overlay_interface_networks_are_preferred(monkeypatch) -> None:
    import meshcommon.peer.addresses as addresses
    from meshcommon.multiaddr_policy import parse_networks

    monkeypatch.setattr(
        addresses, "interface_networks", lambda name: parse_networks(["172.21.0.0/16"])
    )
    settings = PeerSettings(overlay_interface="eth1")
    assert advertised_multiaddrs(settings, policy_for(settings), PID, ips=IPS).multiaddrs == [
        f"/ip4/172.21.0.8/tcp/9000/p2p/{PID}"
    ]
