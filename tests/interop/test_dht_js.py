"""The mesh's DHT against another implementation: js-libp2p 2.9 with ``@libp2p/kad-dht``
15 (server mode, protocol ``/chorus/kad/1.0.0``) given one agent's multiaddr finds every
agent through the DHT and connects to them.

Real processes: 4 agents, WHOOSH and the monitor on 127.0.147/148.x, closed with the run's
swarm.key; the js peer (tests/interop/js/dht.mjs) holds the key and knows nothing of
WHOOSH. Both directions of the wire are used: js asks the agents (FIND_NODE answered by
meshcommon.p2p.dht), and the agents ask js (it speaks the protocol, identify says so).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meshlocal import LocalMesh, MeshLayout

from .conftest import covered_mesh

pytestmark = pytest.mark.integration

LAYOUT = MeshLayout(
    agents=4,
    agent_net="127.0.147",
    whoosh_ip="127.0.148.2",
    monitor_ip="127.0.148.3",
    broadcast_interval_s=5.0,
)
JS_HOST, JS_PORT = "127.0.148.9", 9000


@pytest.fixture(scope="module")
def dmesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    with covered_mesh(request, tmp_path_factory.mktemp("dht-js"), LAYOUT) as mesh:
        yield mesh


def test_js_kad_dht_finds_every_agent_from_one_address(dmesh: LocalMesh, js_libp2p: Path) -> None:
    agents = [dmesh.get_json(f"{LAYOUT.agent_url(i)}/api/health") for i in (1, 2, 3, 4)]
    ids = [a["peer_id"] for a in agents]
    seed = agents[0]["multiaddrs"][0]
    env = {**os.environ, "PNET_KEY_FILE": str(dmesh.swarm_key_path)}
    proc = subprocess.Popen(
        ["node", "--import", "./polyfill.mjs", "dht.mjs", JS_HOST, str(JS_PORT), seed,
         ",".join(ids), "60"],
        cwd=js_libp2p,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert len(lines) == 2, f"js peer: {out.decode()[-2000:]}\n{err.decode()[-2000:]}"
    js_id, result = lines[0]["peer_id"], lines[1]
    print(f"\njs kad-dht: {result}")
    assert set(ids) <= set(result["found"]), "the DHT did not name every agent"
    assert set(ids) <= set(result["connected"]), "not connected to every agent"
    # The other direction: the seed answered js's FIND_NODE requests, and the agents'
    # own walks found js (a server: identify lists the protocol), so it is in their books.
    metrics = httpx.get(f"{LAYOUT.agent_url(1)}/metrics", timeout=5).text
    answered = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('chorus_agent_dht_requests_total{type="FIND_NODE"}')
    ]
    assert answered and answered[0] > 0
    dmesh.wait_for(
        lambda: any(
            dmesh.get_json(f"{LAYOUT.agent_url(i)}/api/health")["known_peers"] > 3
            for i in (1, 2, 3, 4)
        ),
        60,
        what=f"an agent's DHT found the js peer {js_id}",
    )
