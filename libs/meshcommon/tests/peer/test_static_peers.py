from meshcommon.peer.static_peers import parse_static_peers

PID = "12D3KooWLdRq9rGCYQMB7mpbAQuC2ZB1QxqC9LHXAmJ9FCJdwSKE"
OTHER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def test_one_entry_per_peer_with_every_address_in_order() -> None:
    parsed = parse_static_peers(
        [
            f"/ip4/10.0.0.5/tcp/9000/p2p/{PID}",
            f"/ip4/10.0.0.9/tcp/9000/p2p/{OTHER}",
            f"/ip4/10.0.1.5/tcp/9000/p2p/{PID}",
        ]
    )
    assert [p.peer_id for p in parsed.peers] == [PID, OTHER]
    assert parsed.peers[0].multiaddrs == [
        f"/ip4/10.0.0.5/tcp/9000/p2p/{PID}",
        f"/ip4/10.0.1.5/tcp/9000/p2p/{PID}",
    ]
    assert parsed.peers[0].multiaddr == parsed.peers[0].multiaddrs[0]
    assert [p.priority for p in parsed.peers] == [1, 2]
    assert parsed.rejected == ()


def test_invalid_or_anonymous_addresses_are_skipped_with_a_reason(caplog) -> None:
    parsed = parse_static_peers(
        ["garbage", "/ip4/10.0.0.6/tcp/9000", f"/ip4/10.0.0.5/tcp/9000/p2p/{PID}"]
    )
    assert [p.peer_id for p in parsed.peers] == [PID]
    assert [(r.multiaddr, r.reason) for r in parsed.rejected] == [
        ("garbage", "invalid_multiaddr"),
        ("/ip4/10.0.0.6/tcp/9000", "missing_peer_id"),
    ]
    assert sum("static bootstrap peer" in r.getMessage() for r in caplog.records) == 2
