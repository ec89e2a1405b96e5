"""Agents discover each other without WHOOSH: the mesh grows and heals from gossip alone.

Four agents, no WHOOSH: agents 2-4 know only agent 1's address. Availability broadcasts
carry each agent's multiaddrs, so they learn of one another through gossip and connect
directly: a full mesh instead of a star around agent 1. The DHT is off here
(``AGENT_DHT=false``), so gossip alone is what found them (test_dht_discovery: the DHT
alone).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlocal import LocalMesh, MeshLayout

pytestmark = pytest.mark.integration


def test_agents_find_each_other_through_gossip_without_whoosh(tmp_path: Path) -> None:
    layout = MeshLayout(agents=4, agent_net="127.0.94", broadcast_interval_s=1.0)
    mesh = LocalMesh(layout, run_dir=tmp_path)
    try:
        first = mesh.agent_process(1, AGENT_WHOOSH_URL="", AGENT_DHT="false")
        first.start()
        mesh.processes = [first]
        health_url = f"{first.url}/api/health"
        mesh.wait_for(lambda: bool(mesh.get_json(health_url)), 30, what="agent 1 up")
        peer_1 = mesh.get_json(health_url)
        seed = peer_1["multiaddrs"][0]
        for i in (2, 3, 4):
            proc = mesh.agent_process(
                i,
                AGENT_WHOOSH_URL="",
                AGENT_BOOTSTRAP_PEERS=seed,
                AGENT_TARGET_PEERS="3",
                AGENT_DHT="false",
            )
            proc.start()
            mesh.processes.append(proc)

        def full_mesh() -> bool:
            return all(
                mesh.get_json(f"{layout.agent_url(i)}/api/health")["connected_peers"] == 3
                for i in (1, 2, 3, 4)
            )

        waited = mesh.wait_for(full_mesh, timeout=120, what="every agent connected to 3 peers")
        print(f"\nfull mesh of 4 from one seed address after {waited:.1f}s")
        for i in (2, 3, 4):
            assert mesh.get_json(f"{layout.agent_url(i)}/api/health")["known_peers"] == 3
    finally:
        mesh.stop()
