"""Agents find each other through the Kademlia DHT, with no WHOOSH and one bootstrap
address each: the gossip field is off (``AGENT_GOSSIP_DISCOVERY=false``), so the DHT is
what found them. The monitor, also without WHOOSH and given the same one address, expects
and hears every agent: the DHT is its source of peers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from meshlocal import LocalMesh, MeshLayout

pytestmark = pytest.mark.integration

AGENTS = 6


def _metric(text: str, name: str) -> float:
    """The sum of every series of ``name`` (one series: its value)."""
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    ]
    assert values, f"{name} not exported"
    return sum(values)


def test_agents_and_the_monitor_find_everyone_through_the_dht(tmp_path: Path) -> None:
    layout = MeshLayout(agents=AGENTS, agent_net="127.0.95", monitor_ip="127.0.96.3")
    mesh = LocalMesh(layout, run_dir=tmp_path)
    no_whoosh = {"AGENT_WHOOSH_URL": "", "AGENT_GOSSIP_DISCOVERY": "false"}
    try:
        mesh.build()
        monitor = mesh.service("hmmm-monitor")
        first = mesh.agent_process(1, **no_whoosh)
        mesh.processes = [first]  # WHOOSH is never started
        first.start()
        health_url = f"{first.url}/api/health"
        mesh.wait_for(lambda: bool(mesh.get_json(health_url)), 60, what="agent 1 up")
        seed = mesh.get_json(health_url)["multiaddrs"][0]
        for i in range(2, AGENTS + 1):
            proc = mesh.agent_process(i, AGENT_BOOTSTRAP_PEERS=seed, **no_whoosh)
            proc.start()
            mesh.processes.append(proc)
        monitor.env |= {"MONITOR_WHOOSH_URL": "", "MONITOR_BOOTSTRAP_PEERS": seed}
        monitor.start()
        mesh.processes.append(monitor)

        def everyone_known() -> bool:
            return all(
                mesh.get_json(f"{layout.agent_url(i)}/api/health")["known_peers"] == AGENTS - 1
                for i in range(1, AGENTS + 1)
            )

        waited = mesh.wait_for(everyone_known, 120, what="every agent knows every other")
        print(f"\n{AGENTS} agents know each other through the DHT after {waited:.1f}s")
        cov_url = f"{layout.monitor_url}/api/v1/coverage"
        mesh.wait_for(
            lambda: (c := mesh.get_json(cov_url))["expected"] == AGENTS and c["heard"] == AGENTS,
            120,
            what=f"the monitor expects and hears {AGENTS}/{AGENTS}",
        )
        for i in range(2, AGENTS + 1):
            text = httpx.get(f"{layout.agent_url(i)}/metrics", timeout=5).text
            found = 'chorus_agent_peers_discovered_total{source="dht"}'
            gossip = 'chorus_agent_peers_discovered_total{source="gossip"}'
            assert _metric(text, found) >= AGENTS - 2  # all but agent 1 (its bootstrap)
            assert _metric(text, gossip) == 0
            assert _metric(text, "chorus_agent_dht_malformed_total") == 0
    except BaseException:
        print(mesh.log_tail(30))
        raise
    finally:
        mesh.stop()
