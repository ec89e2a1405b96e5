"""docker-compose.test.yml end to end: WHOOSH (DNS discovery), the monitor and 5 agents.

All containers become healthy; WHOOSH lists every agent container (by its address on the
project's network) with a distinct peer ID; the monitor is connected to and hears every one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Timings, get_json, json_lines, lines, run, wait_until

pytestmark = pytest.mark.engine

AGENTS = 5


def _containers(base: list[str], env: dict[str, str]) -> list[dict[str, Any]]:
    return json_lines(run(*base, "ps", "--all", "--format", "json", env=env).stdout)


def _url(base: list[str], env: dict[str, str], service: str) -> str:
    # "127.0.0.1:32768"
    hostport = run(*base, "port", service, "8080", env=env).stdout.strip().splitlines()[-1]
    assert hostport.startswith("127.0.0.1:"), hostport
    return f"http://{hostport}"


def test_compose_mesh_end_to_end(
    compose_project: tuple[list[str], str], engine: dict[str, str], timings: Timings
) -> None:
    base, project = compose_project
    env = {**engine, "CHORUS_AGENTS": str(AGENTS)}
    run(*base, "up", "--detach", "--no-build", env=env, timeout=300)
    timings.mark("compose up")

    # 1. Every container running and healthy (healthchecks from the images, 3 s interval).
    def all_healthy(cs: list[dict[str, Any]]) -> bool:
        return len(cs) == AGENTS + 2 and all(c.get("Health") == "healthy" for c in cs)

    cs = wait_until(
        "all compose containers healthy",
        lambda: _containers(base, env),
        all_healthy,
        timeout=240,
    )
    assert sorted(c["Service"] for c in cs) == sorted(
        ["chorus"] * AGENTS + ["whoosh", "hmmm-monitor"]
    )
    timings.mark("all containers healthy")

    # The agents' addresses on the network this test's project created.
    agent_ids = [c["ID"] for c in cs if c["Service"] == "chorus"]
    agent_ips: set[str] = set()
    for cid in agent_ids:
        nets = json.loads(
            run("docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", cid).stdout
        )
        (net,) = nets.values()
        agent_ips.add(net["IPAddress"])
    assert len(agent_ips) == AGENTS

    whoosh = _url(base, env, "whoosh")
    monitor = _url(base, env, "hmmm-monitor")

    # 2. WHOOSH lists every agent, each healthy, found through DNS.
    def whoosh_all(d: dict[str, Any]) -> bool:
        s = d["summary"]
        return s["discovered"] == AGENTS and s["healthy"] == AGENTS

    agents = wait_until(
        f"WHOOSH to list {AGENTS} healthy agents",
        lambda: get_json(f"{whoosh}/api/v1/agents"),
        whoosh_all,
        timeout=120,
    )
    assert agents["source"] == "dns", agents["source"]
    listed_ips = {a["url"].split("//", 1)[1].rsplit(":", 1)[0] for a in agents["agents"]}
    assert listed_ips == agent_ips
    peer_ids = {a["peer_id"] for a in agents["agents"]}
    assert len(peer_ids) == AGENTS and None not in peer_ids
    assert agents["duplicate_peer_ids"] == []
    # Every advertised multiaddr is on the agents' network (no loopback, none foreign).
    for a in agents["agents"]:
        assert a["multiaddrs"], a
        for ma in a["multiaddrs"]:
            assert ma.split("/")[2] in agent_ips and ma.endswith(f"/p2p/{a['peer_id']}"), ma

    boot = get_json(f"{whoosh}/api/v1/bootstrap-peers")
    assert boot["count"] == AGENTS
    assert {p["peer_id"] for p in boot["bootstrap_peers"]} == peer_ids
    timings.mark("WHOOSH lists every agent")

    # 3. The monitor is connected to and hears every agent WHOOSH knows.
    cov = wait_until(
        f"monitor to hear {AGENTS}/{AGENTS}",
        lambda: get_json(f"{monitor}/api/v1/coverage"),
        lambda c: c["expected"] == AGENTS and c["connected"] == AGENTS and c["heard"] == AGENTS,
        timeout=120,
    )
    assert cov["missing"] == []
    monitor_peers = {p.get("peer_id") for p in get_json(f"{monitor}/api/v1/peers")["peers"]}
    assert peer_ids <= monitor_peers, (peer_ids, monitor_peers)
    timings.mark("monitor hears every agent")

    # 4. Messages really arrived, on the real topic name.
    msgs = get_json(f"{monitor}/api/v1/messages?topic=CHORUS/coordination/v1&limit=500")
    assert msgs["count"] > 0, msgs
    assert {m["from"] for m in msgs["messages"]} >= peer_ids

    # Nothing left running but our project's containers (sanity for the cleanup).
    assert all(
        project in name
        for name in lines(
            "docker",
            "ps",
            "--filter",
            f"label=com.docker.compose.project={project}",
            "--format",
            "{{.Names}}",
        )
    )
