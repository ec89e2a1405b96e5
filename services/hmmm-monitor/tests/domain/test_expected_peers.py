"""Whom the monitor expects: WHOOSH's list, or without it, what the Kademlia DHT found."""

from hmmm_monitor.domain.expected_peers import with_dht_peers
from meshcommon.models import BootstrapPeer

AGENT = "12D3KooWAgentAgentAgentAgentAgentAgentAgentAgent1"
FOREIGN = "12D3KooWForeignForeignForeignForeignForeignFore2"


def listed(peer_id: str) -> BootstrapPeer:
    addr = f"/ip4/127.0.0.1/tcp/9000/p2p/{peer_id}"
    return BootstrapPeer(
        peer_id=peer_id, name="agent-1", priority=1, multiaddr=addr, multiaddrs=[addr]
    )


FOUND = [
    (AGENT, (f"/ip4/127.0.0.1/tcp/9000/p2p/{AGENT}",)),
    (FOREIGN, (f"/ip4/127.0.0.9/tcp/4001/p2p/{FOREIGN}",)),
]


def test_whooshs_list_is_the_authority_a_dht_find_is_not_expected() -> None:
    # A js-libp2p tool answering DHT queries must not read as an agent never heard.
    out = with_dht_peers([listed(AGENT)], FOUND, listed_by_whoosh=True)
    assert [p.peer_id for p in out] == [AGENT]


def test_without_whoosh_the_dht_says_whom_to_expect() -> None:
    out = with_dht_peers([listed(AGENT)], FOUND, listed_by_whoosh=False)
    assert [p.peer_id for p in out] == [AGENT, FOREIGN]
    assert out[1].name == f"dht-{FOREIGN[-8:]}"
    assert out[1].multiaddr == f"/ip4/127.0.0.9/tcp/4001/p2p/{FOREIGN}"


def test_a_find_without_addresses_is_not_expected() -> None:
    out = with_dht_peers([], [(FOREIGN, ())], listed_by_whoosh=False)
    assert out == []


def test_a_find_keeps_the_name_it_was_expected_under() -> None:
    """WHOOSH dropped a killed agent from its last answer, then went down: the DHT still
    names that peer, and alerts must still carry the agent's name, not a placeholder."""
    out = with_dht_peers([], FOUND, listed_by_whoosh=False, known_names={FOREIGN: "chorus-7"})
    assert {p.peer_id: p.name for p in out} == {AGENT: f"dht-{AGENT[-8:]}", FOREIGN: "chorus-7"}
