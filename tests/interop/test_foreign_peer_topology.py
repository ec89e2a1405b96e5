"""A peer of another libp2p implementation joins the mesh through one agent and sends
valid availability messages without a ``peers`` field, then leaves. The agents are never
reported split: the topology names the js peer ``foreign`` while it is there and
``departed`` once it has gone, and the doctor finds nothing at warning or above.

Real processes: 2 agents, WHOOSH and the monitor on 127.0.143/144.x; the js-libp2p 2.9
peer (tests/interop/js/peer.mjs) dials agent-01 only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meshcommon.diagnosis import at_least
from meshcommon.topics import COORDINATION, META_DISCUSSION
from meshlocal import LocalMesh, MeshLayout

from .conftest import JsPeer, covered_mesh

pytestmark = pytest.mark.integration

LAYOUT = MeshLayout(
    agents=2,
    agent_net="127.0.143",
    whoosh_ip="127.0.144.2",
    monitor_ip="127.0.144.3",
    broadcast_interval_s=2.0,
)
JS_HOST = "127.0.144.9"


@pytest.fixture(scope="module")
def fmesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    extra_env = {"hmmm-monitor": {"MONITOR_HEARD_WINDOW_S": "6"}}
    with covered_mesh(request, tmp_path_factory.mktemp("foreign"), LAYOUT, extra_env) as mesh:
        yield mesh


def _topology(mesh: LocalMesh) -> dict[str, Any]:
    return mesh.get_json(f"{mesh.layout.monitor_url}/api/v1/topology")


def _node(topo: dict[str, Any], peer_id: str) -> dict[str, Any] | None:
    return next((n for n in topo["nodes"] if n["id"] == peer_id), None)


def _availability_without_peers(peer_id: str) -> str:
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "type": "availability",
            "node_id": peer_id,
            "available_for_work": True,
            "current_tasks": 0,
            "max_tasks": 1,
            "last_activity": now,
            "status": "available",
            "timestamp": now,
            "name": "js-peer",
        }
    )


def test_a_foreign_peer_is_foreign_then_departed_never_a_split(
    fmesh: LocalMesh, js_libp2p: Path
) -> None:
    mesh = fmesh
    agents = {str(mesh.get_json(f"{LAYOUT.agent_url(i)}/api/health")["peer_id"]) for i in (1, 2)}

    def one_component() -> bool:
        topo = _topology(mesh)
        return topo["components"] == [sorted(agents)] and topo["partitioned"] is False

    mesh.wait_for(one_component, timeout=120, what="the two agents as one component")
    agent_1 = mesh.get_json(f"{LAYOUT.agent_url(1)}/api/health")
    # A foreign implementation that holds the mesh's swarm.key: a member.
    js = JsPeer(js_libp2p, JS_HOST, 9000, pnet_key_file=fmesh.swarm_key_path)
    try:
        assert js.ask(f"dial {agent_1['multiaddrs'][0]}")["dialled"] == agent_1["peer_id"]
        seen: list[dict[str, Any]] = []

        def js_heard() -> bool:
            js.ask(f"say {COORDINATION} {_availability_without_peers(js.peer_id)}")
            topo = _topology(mesh)
            seen.append(topo)
            node = _node(topo, js.peer_id)
            return node is not None and node["heard"]

        waited = mesh.wait_for(js_heard, timeout=60, interval=1, what="the js peer heard")
        topo = _topology(mesh)
        node = _node(topo, js.peer_id)
        assert node is not None
        assert (node["kind"], node["state"], node["reports_peers"]) == ("foreign", "live", False)
        assert topo["foreign"] == [js.peer_id]
        # Never a split, not for one reading while the js peer was there.
        assert all(t["partitioned"] is False for t in seen), [t["components"] for t in seen]
        assert topo["components"] == [sorted(agents)]
        # Agent-01's own claim (its next broadcast) shows the link to the js peer; the
        # monitor has none.
        pair = tuple(sorted([agent_1["peer_id"], js.peer_id]))

        def claimed_link() -> bool:
            topo = _topology(mesh)
            seen.append(topo)
            return any((e["source"], e["target"]) == pair for e in topo["edges"])

        mesh.wait_for(claimed_link, timeout=30, interval=1, what="agent-01's claim of the link")
        assert all(t["partitioned"] is False for t in seen), [t["components"] for t in seen]
        links = {(e["source"], e["target"]): e for e in seen[-1]["edges"]}
        link = links[pair]
        assert link["observed_via"] == ["availability_claim"]
        assert link["claimed_by"] == [agent_1["peer_id"]]
        diagnosis = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/diagnosis")
        foreign = [f for f in diagnosis["findings"] if f["id"] == "foreign_peers"]
        assert foreign and foreign[0]["severity"] == "info"
        assert foreign[0]["evidence"]["peers"][0]["peer_id"] == js.peer_id
        assert "mesh_partitioned" not in {f["id"] for f in diagnosis["findings"]}
    finally:
        js.close()
    left = time.monotonic()

    def departed() -> bool:
        topo = _topology(mesh)
        assert topo["partitioned"] is False, topo["components"]
        node = _node(topo, js.peer_id)
        return node is not None and node["state"] == "departed" and topo["foreign"] == []

    mesh.wait_for(departed, timeout=60, interval=1, what="the js peer departed")
    topo = _topology(mesh)
    assert topo["departed"] == [js.peer_id] and topo["components"] == [sorted(agents)]
    diagnosis = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/diagnosis")
    assert [f["id"] for f in diagnosis["findings"] if at_least(f["severity"], "warning")] == []
    print(
        f"\njs peer heard after {waited:.1f}s, reported departed "
        f"{time.monotonic() - left:.1f}s after it left; never a split"
    )


def _rejected(mesh: LocalMesh, url: str) -> dict[str, int]:
    out: dict[str, int] = {}
    view = mesh.get_json(f"{url}/api/v1/mesh")
    for by_reason in view["validation"]["rejected"].values():
        for reason, n in by_reason.items():
            out[reason] = out.get(reason, 0) + n
    return out


def test_a_js_peer_publishing_garbage_is_rejected_at_the_first_agent(
    fmesh: LocalMesh, js_libp2p: Path
) -> None:
    """js-libp2p's valid messages are accepted and forwarded by agent-01; its garbage (not
    JSON, an availability speaking for agent-02) is rejected there, counted, and reaches
    neither agent-02 nor the monitor."""
    mesh = fmesh
    agent_1 = mesh.get_json(f"{LAYOUT.agent_url(1)}/api/health")
    agent_2 = mesh.get_json(f"{LAYOUT.agent_url(2)}/api/health")
    before = {i: _rejected(mesh, LAYOUT.agent_url(i)) for i in (1, 2)}
    js = JsPeer(js_libp2p, "127.0.144.10", 9000, pnet_key_file=fmesh.swarm_key_path)
    try:
        assert js.ask(f"dial {agent_1['multiaddrs'][0]}")["dialled"] == agent_1["peer_id"]
        forged = json.loads(_availability_without_peers(js.peer_id))
        forged["node_id"] = agent_2["peer_id"]
        messages_url = f"{LAYOUT.monitor_url}/api/v1/messages?from={js.peer_id}"

        def garbage_counted_and_valid_heard() -> bool:
            js.ask(f"say {META_DISCUSSION} {{this is not json")
            js.ask(f"say {COORDINATION} {json.dumps(forged)}")
            js.ask(f"say {COORDINATION} {_availability_without_peers(js.peer_id)}")
            now = _rejected(mesh, LAYOUT.agent_url(1))
            counted = all(
                now.get(r, 0) > before[1].get(r, 0) for r in ("invalid_json", "node_id_not_signer")
            )
            return counted and mesh.get_json(messages_url)["count"] > 0

        mesh.wait_for(
            garbage_counted_and_valid_heard, timeout=60, interval=1, what="garbage counted"
        )
        heard = mesh.get_json(messages_url)["messages"]
        assert {m["type"] for m in heard} == {"availability"}
        assert all(m["payload"]["node_id"] == js.peer_id for m in heard)
        assert _rejected(mesh, LAYOUT.agent_url(2)) == before[2]
        assert _rejected(mesh, LAYOUT.monitor_url) == {}
        cov = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/coverage")
        assert not any(cov["dropped"]["rejected"].values()), cov["dropped"]
    finally:
        js.close()
