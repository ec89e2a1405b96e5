import random

from chorus_agent.domain.peers import choose_dial_targets
from meshcommon.models import BootstrapPeer
from meshcommon.p2p.identity import load_or_create_key_pair, peer_id_of


def _peer(pid: str, i: int) -> BootstrapPeer:
    addr = f"/ip4/10.0.0.{i}/tcp/9000/p2p/{pid}"
    return BootstrapPeer(
        peer_id=pid, name=f"agent-{i}", priority=i, multiaddr=addr, multiaddrs=[addr]
    )


def _ids(n: int) -> list[str]:
    return [peer_id_of(load_or_create_key_pair(None)) for _ in range(n)]


def _components(nodes: list[str], edges: set[frozenset[str]]) -> int:
    parent = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for edge in edges:
        a, b = tuple(edge)
        parent[find(a)] = find(b)
    return len({find(n) for n in nodes})


def test_every_agent_dialling_its_choice_gives_one_connected_mesh() -> None:
    """With ring successors the agent graph cannot be split, whatever the random choices
    are."""
    ids = _ids(20)
    peers = [_peer(pid, i + 1) for i, pid in enumerate(ids)]
    for seed in range(20):
        rng = random.Random(seed)
        edges = {
            frozenset((me, t.peer_id))
            for me in ids
            for t in choose_dial_targets(me, peers, set(), target_peers=1, rng=rng)
        }
        assert _components(ids, edges) == 1


def test_never_dials_itself_and_skips_connected_peers() -> None:
    ids = sorted(_ids(6))
    me = ids[0]
    peers = [_peer(pid, i + 1) for i, pid in enumerate(ids)]
    targets = choose_dial_targets(me, peers, connected={ids[1]}, target_peers=3)
    chosen = [t.peer_id for t in targets]
    assert me not in chosen
    assert ids[1] not in chosen  # successor already connected
    assert len(chosen) == 2  # 1 connected + 2 new = target 3


def test_successor_is_always_dialled_even_when_target_is_met() -> None:
    ids = sorted(_ids(5))
    me = ids[4]  # the last on the ring: successor wraps to ids[0]
    peers = [_peer(pid, i + 1) for i, pid in enumerate(ids)]
    targets = choose_dial_targets(me, peers, connected={ids[1], ids[2]}, target_peers=2)
    assert [t.peer_id for t in targets] == [ids[0]]


def test_alone_in_the_list_dials_nobody() -> None:
    me = _ids(1)[0]
    assert choose_dial_targets(me, [_peer(me, 1)], set(), 4) == []
