"""A real go-libp2p peer (the go-libp2p daemon, p2pd: go-libp2p and go-libp2p-pubsub) next
to a mesh of real processes, connected to agent-01 only.

On the seed's near-miss topic ``chorus/coordination/v1`` it is named, by its identify agent
version (``p2pd/0.1``) and as go-libp2p, from what agent-01 reports: the monitor never
connects to it. On the mesh's topic it speaks GossipSub both ways: the agents' availability
broadcasts reach it (agent-02's through agent-01), a message of its own within the mesh's
rules reaches the monitor through agent-01, and one that breaks them (not JSON) is refused
by agent-01, counted there with its reason, and goes no further.

The mesh runs open (no swarm.key): p2pd has no private-network (PSK) option. Real
processes: 2 agents, WHOOSH and the monitor on 127.0.171/172.x; p2pd on 127.0.172.9/10.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from meshcommon.topics import COORDINATION
from meshlocal import LocalMesh, MeshLayout

from .conftest import covered_mesh, doctor, monitor_findings
from .go.daemon import GoPeer

pytestmark = pytest.mark.integration

LAYOUT = MeshLayout(
    agents=2,
    agent_net="127.0.171",
    whoosh_ip="127.0.172.2",
    monitor_ip="127.0.172.3",
    broadcast_interval_s=2.0,
)
TYPO = "chorus/coordination/v1"
P2PD_AGENT_VERSION = "p2pd/0.1"


@pytest.fixture(scope="module")
def gmesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    extra_env = {"hmmm-monitor": {"MONITOR_HEARD_WINDOW_S": "8"}}
    with covered_mesh(
        request, tmp_path_factory.mktemp("go"), LAYOUT, extra_env, private_network=False
    ) as mesh:
        yield mesh


@pytest.mark.parametrize("go_peer", ["127.0.172.9"], indirect=True)
def test_a_go_peer_on_a_near_miss_topic_one_hop_away_is_named(
    gmesh: LocalMesh, go_peer: GoPeer
) -> None:
    mesh, go = gmesh, go_peer
    agent_1 = mesh.get_json(f"{LAYOUT.agent_url(1)}/api/health")
    started = time.monotonic()
    go.subscribe(TYPO)
    assert go.connect(agent_1["multiaddrs"][0]) == agent_1["peer_id"]
    found: dict[str, dict[str, Any]] = {}

    def named() -> bool:
        found.clear()
        found.update(monitor_findings(mesh))
        typo, foreign = found.get("topic_near_miss"), found.get("foreign_peers")
        if typo is None or foreign is None:
            return False
        rows = {r["peer_id"]: r for r in foreign["evidence"]["peers"]}
        version = (rows.get(go.peer_id) or {}).get("agent_version")
        return typo["evidence"]["topic"] == TYPO and version == P2PD_AGENT_VERSION

    waited = mesh.wait_for(named, timeout=90, interval=1, what="the go peer named")
    # The monitor learnt all of it from agent-01: it has no connection to the go peer.
    view = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/mesh")
    assert go.peer_id not in {c["peer_id"] for c in view["connections"]}
    assert go.peer_id not in view["subscriptions"]

    typo = found["topic_near_miss"]
    assert typo["severity"] == "warning" and typo["evidence"]["known_topic"] == COORDINATION
    (row,) = typo["evidence"]["subscribers"]
    assert row["peer_id"] == go.peer_id and row["agent_version"] == P2PD_AGENT_VERSION
    assert row["connected_to"] == [{"peer_id": agent_1["peer_id"], "name": "agent-01"}]
    assert "agent-01" in typo["fix"]

    foreign = found["foreign_peers"]
    assert foreign["evidence"]["by_implementation"] == {
        "go-libp2p": {"count": 1, "agent_versions": [P2PD_AGENT_VERSION]}
    }
    assert foreign["title"].endswith(f": 1 go-libp2p ({P2PD_AGENT_VERSION})"), foreign["title"]
    (go_row,) = foreign["evidence"]["peers"]
    assert go_row["name"] == f"{P2PD_AGENT_VERSION} ({go.peer_id[-8:]})"
    assert go_row["connected_to_monitor"] is False and TYPO in go_row["topics"]

    code, out, took = doctor("--monitor", LAYOUT.monitor_url, "--json")
    assert code == 1, out
    doc = json.loads(out)
    ids = {f["id"] for f in doc["findings"] if f["source"] == "monitor"}
    assert {"topic_near_miss", "foreign_peers"} <= ids

    # agent-01's own view of it, on the monitor's /api/v1/peers, and the metric.
    peers = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/peers")
    row_1 = next(p for p in peers["peers"] if p["peer_id"] == agent_1["peer_id"])
    go_seen = {n["peer_id"]: n for n in row_1["neighbours"]}[go.peer_id]
    assert go_seen["implementation"] == "go-libp2p" and TYPO in go_seen["topics"]
    assert "/meshsub/1.1.0" in go_seen["protocols"]
    metrics = httpx.get(f"{LAYOUT.monitor_url}/metrics", timeout=5).text
    assert 'hmmm_mesh_peers_by_implementation{implementation="go-libp2p"} 1.0' in metrics
    print(
        f"\ngo peer on {TYPO} named {waited:.1f}s after it joined "
        f"({time.monotonic() - started:.1f}s in all); doctor took {took:.2f}s"
    )


@pytest.mark.parametrize("go_peer", ["127.0.172.10"], indirect=True)
def test_gossip_both_ways_with_a_go_peer(gmesh: LocalMesh, go_peer: GoPeer) -> None:
    mesh, go = gmesh, go_peer
    agents = [mesh.get_json(f"{LAYOUT.agent_url(i)}/api/health") for i in (1, 2)]
    started = time.monotonic()
    sub = go.subscribe(COORDINATION)
    assert go.connect(agents[0]["multiaddrs"][0]) == agents[0]["peer_id"]

    # mesh -> go: both agents' availability broadcasts (agent-02's forwarded by agent-01).
    def senders() -> set[str]:
        out = set()
        for m in sub.poll():
            if m.sender == go.peer_id:
                continue  # go-libp2p-pubsub hands its own messages to its subscribers too
            payload = json.loads(m.data)
            if payload.get("type") == "availability" and payload.get("node_id") == m.sender:
                out.add(m.sender)
        return out

    want = {a["peer_id"] for a in agents}
    heard_s = mesh.wait_for(
        lambda: senders() >= want, timeout=30, interval=0.5, what="both agents at the go peer"
    )

    # go -> mesh: a message within the mesh's rules (a JSON object of a type this build
    # does not know: forwarded, for newer peers) reaches the monitor through agent-01.
    hello = {"type": "go-libp2p-hello", "n": 1}

    def at_monitor() -> list[dict[str, Any]]:
        doc = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/messages?from={go.peer_id}")
        return list(doc["messages"])

    def arrived() -> bool:
        # Published until it arrives: until agent-01 has grafted the go peer its first
        # message may travel by gossip only (IHAVE at the next heartbeat).
        if not at_monitor():
            go.publish(COORDINATION, json.dumps(hello).encode())
            return False
        return True

    mesh.wait_for(arrived, timeout=30, interval=1, what="the go peer's message at the monitor")
    (first, *_) = at_monitor()
    assert first["type"] == "go-libp2p-hello" and first["payload"] == hello
    assert first["topic"] == COORDINATION

    # go -> mesh, against the rules: agent-01 refuses it (not forwarded), counted by reason.
    def refused() -> int:
        health = mesh.get_json(f"{LAYOUT.agent_url(1)}/api/health")
        return int(health["gossip_rejected"].get("invalid_json", 0))

    before = refused()
    go.publish(COORDINATION, b"not json from go-libp2p")
    mesh.wait_for(lambda: refused() > before, timeout=15, interval=0.5, what="agent-01 refusal")
    metrics = httpx.get(f"{LAYOUT.agent_url(1)}/metrics", timeout=5).text
    assert "chorus_agent_messages_rejected_total" in metrics and 'reason="invalid_json"' in metrics
    # ... and goes no further: the monitor has only the valid ones from the go peer.
    assert all(m["type"] == "go-libp2p-hello" for m in at_monitor())
    print(
        f"\nagents' broadcasts at the go peer after {heard_s:.1f}s; "
        f"both ways in {time.monotonic() - started:.1f}s"
    )
