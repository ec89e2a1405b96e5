"""The private network against another implementation: js-libp2p 2.9 with ``@libp2p/pnet``.

Real processes: 3 agents, WHOOSH and the monitor on 127.0.145/146.x, closed with the run's
swarm.key (meshlocal writes one per run). The js peer (tests/interop/js/peer.mjs):

- with the same swarm.key dials one agent, hears every agent through it, and the monitor
  hears the js peer: the XSalsa20 stream, the nonce exchange and the key file agree with
  ``@libp2p/pnet`` byte for byte;
- without a key, and with another key, gets no connection to any agent or to the monitor,
  and each refusal is a number with its reason (``no_key``, ``wrong_key``) at the host it
  dialled, in ``/api/health`` and in ``/metrics``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshcommon.swarm_key import write_swarm_key
from meshcommon.topics import COORDINATION
from meshlocal import LocalMesh, MeshLayout

from .conftest import JsPeer, covered_mesh

pytestmark = pytest.mark.integration

LAYOUT = MeshLayout(
    agents=3,
    agent_net="127.0.145",
    whoosh_ip="127.0.146.2",
    monitor_ip="127.0.146.3",
    broadcast_interval_s=2.0,
)
JS_HOST = "127.0.146.9"


@pytest.fixture(scope="module")
def pmesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    with covered_mesh(request, tmp_path_factory.mktemp("pnet-js"), LAYOUT) as mesh:
        yield mesh


def _hosts(mesh: LocalMesh) -> dict[str, dict[str, Any]]:
    """name -> /api/health of every libp2p host of the run: the agents and the monitor."""
    hosts = {f"agent-{i:02d}": f"{LAYOUT.agent_url(i)}/api/health" for i in (1, 2, 3)}
    hosts["monitor"] = f"{LAYOUT.monitor_url}/api/health"
    return {name: mesh.get_json(url) for name, url in hosts.items()}


def _refused(health: dict[str, Any], reason: str) -> int:
    return int(health.get("pnet_refused", {}).get("inbound", {}).get(reason, 0))


def _metric(mesh: LocalMesh, url: str, name: str, reason: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for line in text.splitlines():
        labels = ('direction="inbound"', f'reason="{reason}"')
        if line.startswith(name + "{") and all(label in line for label in labels):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{direction=inbound,reason={reason}}} not in {url}/metrics")


def _availability(peer_id: str) -> str:
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
            "name": "js-pnet-peer",
        }
    )


def test_js_libp2p_with_the_swarm_key_is_a_member(pmesh: LocalMesh, js_libp2p: Path) -> None:
    mesh = pmesh
    hosts = _hosts(mesh)
    assert all(h["private_network"] is True for h in hosts.values()), hosts
    agents = {hosts[f"agent-{i:02d}"]["peer_id"] for i in (1, 2, 3)}
    js = JsPeer(js_libp2p, JS_HOST, 9000, pnet_key_file=mesh.swarm_key_path)
    try:
        first = hosts["agent-01"]
        assert js.ask(f"dial {first['multiaddrs'][0]}")["dialled"] == first["peer_id"]
        # Every agent heard through the one agent it dialled (GossipSub forwarding).
        mesh.wait_for(
            lambda: agents <= set(js.ask("stats")["senders"]),
            timeout=60,
            interval=1,
            what="the js peer to hear all 3 agents",
        )
        assert set(js.ask("peers")["peers"]) == {first["peer_id"]}

        def monitor_heard_js() -> bool:
            js.ask(f"say {COORDINATION} {_availability(js.peer_id)}")
            url = f"{LAYOUT.monitor_url}/api/v1/messages?from={js.peer_id}&limit=5"
            return mesh.get_json(url)["count"] > 0

        mesh.wait_for(monitor_heard_js, timeout=60, interval=1, what="the monitor to hear js")
    finally:
        js.close()


@pytest.mark.parametrize("key", ["none", "another"])
def test_js_libp2p_without_the_key_reaches_no_host(
    pmesh: LocalMesh, js_libp2p: Path, tmp_path: Path, key: str
) -> None:
    """No key: the js peer speaks plaintext multistream, which the listener recognises
    (``no_key``). Another key: the first bytes decrypt to garbage (``wrong_key``)."""
    mesh = pmesh
    reason = "no_key" if key == "none" else "wrong_key"
    key_file = write_swarm_key(tmp_path / "other.key") if key == "another" else None
    before = _hosts(mesh)
    js = JsPeer(js_libp2p, JS_HOST, 9000, pnet_key_file=key_file)
    try:
        for name, health in before.items():
            answer = js.ask(f"dial {health['multiaddrs'][0]}", within_s=30)
            assert "error" in answer and "dialled" not in answer, (name, answer)
        assert js.ask("peers")["peers"] == []

        def every_host_counted() -> bool:
            now = _hosts(mesh)
            return all(_refused(now[n], reason) > _refused(before[n], reason) for n in now)

        mesh.wait_for(
            every_host_counted,
            timeout=30,
            interval=0.5,
            what=f"every agent and the monitor to count a {reason} refusal",
        )
        # The same count in Prometheus' view of one agent and of the monitor.
        agent_1 = _refused(_hosts(mesh)["agent-01"], reason)
        name = "chorus_agent_pnet_refused_total"
        assert _metric(mesh, LAYOUT.agent_url(1), name, reason) == agent_1
        assert _metric(mesh, LAYOUT.monitor_url, "hmmm_pnet_refused_total", reason) >= 1
        # Nobody connected to it, and nothing it could have sent was heard.
        for i in (1, 2, 3):
            mesh_view = mesh.get_json(f"{LAYOUT.agent_url(i)}/api/v1/mesh")
            assert js.peer_id not in {c["peer_id"] for c in mesh_view["connections"]}
        url = f"{LAYOUT.monitor_url}/api/v1/messages?from={js.peer_id}&limit=5"
        assert mesh.get_json(url)["count"] == 0
    finally:
        js.close()
