"""The mesh seen from every agent, with a peer of another implementation one hop away from
the monitor: a js-libp2p 2.9 peer subscribed to ``chorus/coordination/v1`` (the seed's
case-sensitivity bug) dials agent-01 only. The monitor never connects to it, yet its
diagnosis names it on the near-miss topic with agent-01, by its identify agent version
(``js-libp2p/...``) among the foreign peers; the doctor exits 1; agent-01's row of
``/api/v1/peers`` shows the js peer's topics, agent version and link, and the metrics count
it by implementation.

Real processes: 2 agents, WHOOSH and the monitor on 127.0.161/162.x; the js peer
(tests/interop/js/peer.mjs) on 127.0.162.9.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshcommon.topics import COORDINATION
from meshlocal import LocalMesh, MeshLayout

from .conftest import JsPeer, covered_mesh, doctor, monitor_findings

pytestmark = pytest.mark.integration

LAYOUT = MeshLayout(
    agents=2,
    agent_net="127.0.161",
    whoosh_ip="127.0.162.2",
    monitor_ip="127.0.162.3",
    broadcast_interval_s=2.0,
)
JS_HOST = "127.0.162.9"
TYPO = "chorus/coordination/v1"


@pytest.fixture(scope="module")
def nmesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    extra_env = {"hmmm-monitor": {"MONITOR_HEARD_WINDOW_S": "8"}}
    with covered_mesh(request, tmp_path_factory.mktemp("neighbours"), LAYOUT, extra_env) as mesh:
        yield mesh


def test_a_js_peer_on_a_near_miss_topic_one_hop_away_is_named(
    nmesh: LocalMesh, js_libp2p: Path
) -> None:
    mesh = nmesh
    agent_1 = mesh.get_json(f"{LAYOUT.agent_url(1)}/api/health")
    js = JsPeer(js_libp2p, JS_HOST, 9000, pnet_key_file=mesh.swarm_key_path)
    started = time.monotonic()
    try:
        assert js.ask(f"sub {TYPO}")["subscribed"] == TYPO
        assert js.ask(f"dial {agent_1['multiaddrs'][0]}")["dialled"] == agent_1["peer_id"]
        found: dict[str, dict[str, Any]] = {}

        def named() -> bool:
            found.clear()
            found.update(monitor_findings(mesh))
            typo = found.get("topic_near_miss")
            foreign = found.get("foreign_peers")
            if typo is None or foreign is None:
                return False
            rows = {r["peer_id"]: r for r in foreign["evidence"]["peers"]}
            version = (rows.get(js.peer_id) or {}).get("agent_version") or ""
            return typo["evidence"]["topic"] == TYPO and version.startswith("js-libp2p/")

        waited = mesh.wait_for(named, timeout=90, interval=1, what="the js peer named")
        # The monitor learnt all of it from agent-01: it has no connection to the js peer.
        view = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/mesh")
        assert js.peer_id not in {c["peer_id"] for c in view["connections"]}
        assert js.peer_id not in view["subscriptions"]

        typo = found["topic_near_miss"]
        assert typo["severity"] == "warning" and typo["evidence"]["known_topic"] == COORDINATION
        (row,) = typo["evidence"]["subscribers"]
        assert row["peer_id"] == js.peer_id and row["agent_version"].startswith("js-libp2p/")
        assert row["connected_to"] == [{"peer_id": agent_1["peer_id"], "name": "agent-01"}]
        assert "agent-01" in typo["fix"]

        foreign = found["foreign_peers"]
        assert set(foreign["evidence"]["by_implementation"]) == {"js-libp2p"}
        assert "1 js-libp2p (js-libp2p/" in foreign["title"]
        (js_row,) = foreign["evidence"]["peers"]
        assert js_row["name"].startswith("js-libp2p/") and js_row["name"].endswith(
            f"({js.peer_id[-8:]})"
        )
        assert js_row["connected_to_monitor"] is False and TYPO in js_row["topics"]

        code, out, took = doctor("--monitor", LAYOUT.monitor_url, "--json")
        assert code == 1, out
        doc = json.loads(out)
        assert doc["services"]["monitor"]["reached"]
        ids = {f["id"] for f in doc["findings"] if f["source"] == "monitor"}
        assert {"topic_near_miss", "foreign_peers"} <= ids

        # agent-01's own view, on the monitor's /api/v1/peers.
        peers = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/peers")
        row_1 = next(p for p in peers["peers"] if p["peer_id"] == agent_1["peer_id"])
        seen = {n["peer_id"]: n for n in row_1["neighbours"]}
        js_seen = seen[js.peer_id]
        assert js_seen["implementation"] == "js-libp2p" and TYPO in js_seen["topics"]
        assert js_seen["protocols"]  # another build: its protocols are reported
        assert js_seen["uptime_s"] is not None and js_seen["bytes_in_per_s"] is not None

        def link_measured() -> bool:
            peers = mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/peers")
            row = next(p for p in peers["peers"] if p["peer_id"] == agent_1["peer_id"])
            n = {x["peer_id"]: x for x in row["neighbours"]}.get(js.peer_id) or {}
            return n.get("rtt_ms") is not None and n.get("loss") == 0

        mesh.wait_for(link_measured, timeout=30, interval=1, what="agent-01's pings to js")
        metrics = httpx.get(f"{LAYOUT.monitor_url}/metrics", timeout=5).text
        assert 'hmmm_mesh_peers_by_implementation{implementation="js-libp2p"} 1.0' in metrics
        print(
            f"\njs peer on {TYPO} named {waited:.1f}s after it joined "
            f"({time.monotonic() - started:.1f}s in all); doctor took {took:.2f}s"
        )
    finally:
        js.close()
