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


def test_peers_backing_off_or_being_dialled_are_skipped_and_count_as_pending() -> None:
    ids = sorted(_ids(6))
    me = ids[0]
    peers = [_peer(pid, i + 1) for i, pid in enumerate(ids)]
    # The successor is backing off: it is not dialled, the others are.
    targets = choose_dial_targets(me, peers, set(), 2, ready=lambda pid: pid != ids[1])
    assert ids[1] not in [t.peer_id for t in targets] and len(targets) == 2
    # Two dials in flight already fill a target of 3 but for one.
    targets = choose_dial_targets(me, peers, {ids[1]}, 3, pending={ids[2]})
    assert len(targets) == 1 and targets[0].peer_id not in (ids[1], ids[2])


def test_the_peer_book_is_capped_and_refuses_address_floods() -> None:
    from chorus_agent.domain.peers import PeerBook
    from meshcommon.limits import MAX_MULTIADDRS_PER_PEER
    from meshcommon.multiaddr_policy import MultiaddrPolicy

    ids = _ids(5)
    book = PeerBook(MultiaddrPolicy(), max_peers=3)
    for i, pid in enumerate(ids):
        assert book.learn(pid, [f"/ip4/10.0.0.{i + 1}/tcp/9000/p2p/{pid}"], f"a{i}")
    assert len(book) == 3 and book.evicted == 2
    assert [p.peer_id for p in book.peers()] == ids[2:]  # the oldest went first
    flood = [f"/ip4/10.0.1.{i % 250}/tcp/{9000 + i}/p2p/{ids[0]}" for i in range(5000)]
    assert not book.learn(ids[0], flood)
    assert book.refused == {"too_many_multiaddrs": 1}
    ok = flood[:MAX_MULTIADDRS_PER_PEER]
    assert book.learn(ids[0], ok) and len(book) == 3


def test_agents_knowing_only_their_views_still_form_one_mesh() -> None:
    """Each agent knows only its view (WHOOSH's: the ring successor and predecessor and a
    few random peers) and WHOOSH names its successor: the graph stays connected."""
    ids = sorted(_ids(30))
    peers = {pid: _peer(pid, i + 1) for i, pid in enumerate(ids)}
    rng = random.Random(3)
    edges = set()
    for n, me in enumerate(ids):
        successor, predecessor = ids[(n + 1) % len(ids)], ids[n - 1]
        randoms = rng.sample([p for p in ids if p not in (me, successor, predecessor)], 2)
        view = [peers[p] for p in (predecessor, *randoms, successor)]  # successor not first
        targets = choose_dial_targets(me, view, set(), 1, rng=rng, successor=successor)
        assert targets[0].peer_id == successor
        edges |= {frozenset((me, t.peer_id)) for t in targets}
    assert _components(ids, edges) == 1


def test_a_named_successor_wins_unless_it_is_unknown() -> None:
    ids = sorted(_ids(5))
    me = ids[0]
    peers = [_peer(pid, i + 1) for i, pid in enumerate(ids)]
    named = choose_dial_targets(me, peers, set(), 1, successor=ids[3])
    assert [t.peer_id for t in named] == [ids[3]]
    unknown = choose_dial_targets(me, peers, set(), 1, successor=_ids(1)[0])
    assert [t.peer_id for t in unknown] == [ids[1]]  # computed here, as without a view
