"""Agents that know only their own view of WHOOSH's list (k = 1: the ring successor and
predecessor and one random peer, 3 of the 9 others) still form one mesh, and the monitor,
which keeps the whole list, hears 10/10."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from meshlocal import LocalMesh, MeshLayout

pytestmark = pytest.mark.integration

K = 1
AGENTS = 10


@pytest.fixture(scope="module")
def view_mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    layout = MeshLayout(
        agents=AGENTS,
        agent_net="127.0.93",
        whoosh_ip="127.0.93.102",
        monitor_ip="127.0.93.103",
        broadcast_interval_s=3.0,
    )
    run_dir = tmp_path_factory.mktemp("view")
    agent_env = {
        f"agent-{i:02d}": {
            "AGENT_BOOTSTRAP_VIEW_K": str(K),
            "AGENT_TARGET_PEERS": "2",
            "AGENT_BOOTSTRAP_CACHE_PATH": str(run_dir / f"agent-{i:02d}-bootstrap.json"),
        }
        for i in range(1, AGENTS + 1)
    }
    mesh = LocalMesh(layout, run_dir=run_dir, extra_env=agent_env)
    try:
        mesh.start()
        yield mesh
    finally:
        mesh.stop()
        if request.session.testsfailed:
            print(mesh.log_tail())


def _components(nodes: set[str], edges: set[frozenset[str]]) -> int:
    parent = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in (tuple(e) for e in edges):
        parent[find(a)] = find(b)
    return len({find(n) for n in nodes})


def test_agents_connect_through_their_views_and_the_monitor_hears_all(
    view_mesh: LocalMesh,
) -> None:
    lay = view_mesh.layout
    started = time.monotonic()
    cov_url = f"{lay.monitor_url}/api/v1/coverage"
    view_mesh.wait_for(
        lambda: view_mesh.get_json(cov_url)["heard"] == AGENTS, timeout=120, what="10/10 heard"
    )
    heard_s = time.monotonic() - started
    whole = view_mesh.get_json(f"{lay.whoosh_url}/api/v1/bootstrap-peers")
    ring = sorted(p["peer_id"] for p in whole["bootstrap_peers"])
    assert whole["count"] == AGENTS and whole["view"] is None  # the monitor's list, whole

    healths = [view_mesh.get_json(f"{lay.agent_url(i)}/api/health") for i in range(1, 11)]
    agents = {h["peer_id"] for h in healths}
    assert agents == set(ring)

    def view_of(i: int) -> dict:
        # What the agent got from WHOOSH (its disk cache): its own view, not the list.
        path = view_mesh.run_dir / f"agent-{i:02d}-bootstrap.json"
        return json.loads(path.read_text())["response"]

    def views_settled() -> bool:
        return all(
            (view_of(i)["view"] or {}).get("successor")
            == next((p for p in ring if p > h["peer_id"]), ring[0])
            for i, h in enumerate(healths, start=1)
        )

    view_mesh.wait_for(views_settled, timeout=30, what="every agent's view of 10")
    for i, health in enumerate(healths, start=1):
        response = view_of(i)
        view = response["view"]
        assert view["peer_id"] == health["peer_id"] and view["k"] == K
        assert response["count"] <= K + 2 < AGENTS - 1
        assert response["bootstrap_peers"][0]["peer_id"] == view["successor"]

    # The agents' own graph (the monitor's connections left out) is one component.
    def agent_graph_components() -> int:
        edges = set()
        for i in range(1, AGENTS + 1):
            health = view_mesh.get_json(f"{lay.agent_url(i)}/api/health")
            edges |= {frozenset((health["peer_id"], p)) for p in health["peers"] if p in agents}
        return _components(agents, edges)

    view_mesh.wait_for(
        lambda: agent_graph_components() == 1, timeout=60, what="one agent component"
    )
    print(f"\n10/10 heard through per-agent views (k={K}) after {heard_s:.1f} s")
