"""The mesh's DHT against go-libp2p-kad-dht (the go-libp2p daemon, p2pd, ``-dht``): given
one agent's address, go-libp2p finds every agent through the agents' DHT (FIND_PEER, and a
GET_CLOSEST_PEERS walk names them all), the agents answering its FIND_NODE requests.

p2pd speaks the public protocol ID ``/ipfs/kad/1.0.0`` and cannot be given another, so this
mesh runs with ``AGENT_DHT_PROTOCOL``/``MONITOR_DHT_PROTOCOL`` set to it (the mesh's own,
``/chorus/kad/1.0.0``, is what keeps a deployed mesh apart from the IPFS DHT) and open (p2pd
has no private-network option). Real processes: 4 agents, WHOOSH and the monitor on
127.0.173/174.x; p2pd on 127.0.174.9, knowing nothing of WHOOSH.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meshcommon.waiting import TRANSIENT, wait_until
from meshlocal import LocalMesh, MeshLayout

from .conftest import covered_mesh, running_go_peer
from .go.daemon import DaemonError

pytestmark = pytest.mark.integration

LAYOUT = MeshLayout(
    agents=4,
    agent_net="127.0.173",
    whoosh_ip="127.0.174.2",
    monitor_ip="127.0.174.3",
    broadcast_interval_s=5.0,
)
GO_HOST = "127.0.174.9"
IPFS_KAD = "/ipfs/kad/1.0.0"


@pytest.fixture(scope="module")
def kmesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    extra_env = {
        **{f"agent-{i:02d}": {"AGENT_DHT_PROTOCOL": IPFS_KAD} for i in range(1, 5)},
        "hmmm-monitor": {"MONITOR_DHT_PROTOCOL": IPFS_KAD},
    }
    with covered_mesh(
        request, tmp_path_factory.mktemp("dht-go"), LAYOUT, extra_env, private_network=False
    ) as mesh:
        yield mesh


def _find_node_answered(agent: int) -> float:
    metrics = httpx.get(f"{LAYOUT.agent_url(agent)}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('chorus_agent_dht_requests_total{type="FIND_NODE"}')
    )


def test_go_kad_dht_finds_every_agent_from_one_address(
    request: pytest.FixtureRequest, kmesh: LocalMesh, p2pd: Path
) -> None:
    agents = [kmesh.get_json(f"{LAYOUT.agent_url(i)}/api/health") for i in (1, 2, 3, 4)]
    ids = [a["peer_id"] for a in agents]
    answered_before = _find_node_answered(1)
    with running_go_peer(request, p2pd, GO_HOST, dht=True) as go:
        started = time.monotonic()
        assert go.connect(agents[0]["multiaddrs"][0]) == ids[0]
        # All it knows is agent-01 (no WHOOSH, no other address).
        assert {p.peer_id for p in go.peers()} == {ids[0]}

        found: dict[str, list[str]] = {}
        for agent in agents[1:]:
            # go-libp2p-kad-dht puts agent-01 in its routing table once identify has told
            # it that agent-01 speaks the DHT: until then a lookup has no one to ask.
            info, _ = wait_until(
                functools.partial(go.find_peer, agent["peer_id"], timeout_s=10),
                within_s=30,
                interval=0.2,
                what=f"go FIND_PEER {agent['name']}",
                transient=(*TRANSIENT, DaemonError),
            )
            assert info.peer_id == agent["peer_id"]
            found[info.peer_id] = info.addrs
            advertised = {a.rsplit("/p2p/", 1)[0] for a in agent["multiaddrs"]}
            assert advertised & set(info.addrs), (agent["name"], info.addrs)
        found_s = time.monotonic() - started

        walked = set(go.closest_peers(b"chorus go-libp2p interop", timeout_s=30))
        assert set(ids) <= walked, walked
        assert set(ids) <= {p.peer_id for p in go.peers()}  # and it reached them all
        # The other direction of the wire: agent-01 answered go's FIND_NODE requests.
        assert _find_node_answered(1) > answered_before
        print(
            f"\ngo kad-dht: 3 agents found from agent-01's address in {found_s:.1f}s; "
            f"the walk named {len(walked)} peers"
        )
