"""The whole main path with real processes: 10 agents gossip, WHOOSH discovers all 10,
the monitor hears all 10 (and one more that it is not connected to)."""

from __future__ import annotations

import statistics
import time

import httpx
import pytest

from meshcommon.multiaddr_policy import AcceptedAddr, MultiaddrPolicy
from meshlocal import LocalMesh

pytestmark = pytest.mark.integration

LOCAL_POLICY = MultiaddrPolicy(allow_loopback=True)


def _bootstrap(mesh: LocalMesh) -> dict:
    return mesh.get_json(f"{mesh.layout.whoosh_url}/api/v1/bootstrap-peers")


def _coverage(mesh: LocalMesh) -> dict:
    return mesh.get_json(f"{mesh.layout.monitor_url}/api/v1/coverage")


def test_whoosh_discovers_all_ten_agents(mesh: LocalMesh) -> None:
    waited = mesh.wait_for(
        lambda: _bootstrap(mesh)["count"] == 10, timeout=120, what="10 bootstrap peers"
    )
    print(f"\n10/10 in WHOOSH's bootstrap list after {waited:.1f}s")
    body = _bootstrap(mesh)
    peers = body["bootstrap_peers"]
    assert len({p["peer_id"] for p in peers}) == 10
    assert sorted(p["priority"] for p in peers) == list(range(1, 11))
    for peer in peers:
        assert peer["multiaddr"] == peer["multiaddrs"][0]
        for addr in peer["multiaddrs"]:
            verdict = LOCAL_POLICY.evaluate(addr, peer["peer_id"])
            assert isinstance(verdict, AcceptedAddr), (addr, verdict)
            assert addr.endswith(f"/p2p/{peer['peer_id']}")
    summary = mesh.get_json(f"{mesh.layout.whoosh_url}/api/v1/agents")["summary"]
    assert (summary["expected"], summary["healthy"], summary["missing"]) == (10, 10, 0)
    # The agent answering /api/health under each name is the peer WHOOSH lists.
    names = {p["name"]: p["peer_id"] for p in peers}
    for i in range(1, 11):
        health = mesh.get_json(f"{mesh.layout.agent_url(i)}/api/health")
        assert names[health["name"]] == health["peer_id"]


def _health_checks_made(mesh: LocalMesh) -> float:
    text = httpx.get(f"{mesh.layout.whoosh_url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("whoosh_health_checks_total{")
    )


def test_bootstrap_list_answers_from_memory(mesh: LocalMesh) -> None:
    """Serving the list never fans out to the agents: 30 answers cost no more health
    checks than WHOOSH's own rounds make in the meantime, and they come from at most as
    many snapshots as rounds ran."""
    mesh.wait_for(lambda: _bootstrap(mesh)["count"] == 10, timeout=120, what="10 peers")
    checks_before = _health_checks_made(mesh)
    started = time.monotonic()
    timings, snapshots = [], set()
    with httpx.Client() as client:
        for _ in range(30):
            t0 = time.perf_counter()
            resp = client.get(f"{mesh.layout.whoosh_url}/api/v1/bootstrap-peers")
            resp.raise_for_status()
            timings.append((time.perf_counter() - t0) * 1000)
            snapshots.add(resp.json()["updated_at"])
    rounds = (time.monotonic() - started) / mesh.layout.whoosh_poll_s + 2
    agents = mesh.layout.agents
    assert len(snapshots) <= rounds, (len(snapshots), rounds)
    # A round polls each agent once (retries aside); 30 answers from the network would
    # have been 300 checks.
    assert _health_checks_made(mesh) - checks_before <= rounds * agents * 2
    print(f"\nbootstrap-peers over HTTP: median {statistics.median(timings):.2f} ms")


def test_monitor_hears_all_ten(mesh: LocalMesh) -> None:
    def ten_heard() -> bool:
        cov = _coverage(mesh)
        return cov["expected"] == 10 and cov["heard"] == 10

    waited = mesh.wait_for(ten_heard, timeout=120, what="monitor coverage 10/10 heard")
    print(f"\nmonitor heard 10/10 after {waited:.1f}s more")
    cov = _coverage(mesh)
    assert cov["missing"] == []
    assert cov["connected"] == 10
    # The JSON-lines log has one record per message with the contract's fields.
    messages = mesh.get_json(f"{mesh.layout.monitor_url}/api/v1/messages?limit=50")
    records = messages["messages"] if isinstance(messages, dict) else messages
    assert records
    for rec in records:
        assert {"timestamp", "topic", "from", "type", "payload"} <= rec.keys()


def test_monitor_hears_an_agent_it_is_not_connected_to(mesh: LocalMesh) -> None:
    hidden = mesh.service("agent-11")
    hidden_id = mesh.get_json(f"{hidden.url}/api/health")["peer_id"]

    def heard_hidden() -> bool:
        url = f"{mesh.layout.monitor_url}/api/v1/messages?from={hidden_id}&limit=5"
        body = mesh.get_json(url)
        records = body["messages"] if isinstance(body, dict) else body
        return any(r["from"] == hidden_id for r in records)

    mesh.wait_for(heard_hidden, timeout=120, what="a message from agent-11 at the monitor")
    monitor_id = mesh.get_json(f"{mesh.layout.monitor_url}/api/health")["peer_id"]
    # Not directly connected: what the monitor heard came through other agents.
    assert monitor_id not in mesh.get_json(f"{hidden.url}/api/health")["peers"]
    assert hidden_id in _coverage(mesh)["unexpected"]


def test_all_processes_survived(mesh: LocalMesh) -> None:
    assert [p.name for p in mesh.processes if not p.alive()] == []
