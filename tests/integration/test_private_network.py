"""The private network as a user meets it, on real processes: a bad or missing swarm.key
stops the agent and the monitor at once with one line naming the file and the format; a
keyed mesh says so in /api/health and counts the peers it refuses by reason, and the key
is in no log line, metric or API answer; an open agent warns that anyone can join."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig
from meshcommon.swarm_key import EXPECTED_FORMAT, read_swarm_key, write_swarm_key
from meshlocal import LocalMesh, MeshLayout

pytestmark = pytest.mark.integration

LAYOUT = MeshLayout(
    agents=2,
    agent_net="127.0.90",
    whoosh_ip="127.0.90.100",
    monitor_ip="127.0.90.101",
    broadcast_interval_s=2.0,
)


def _run_service(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Start a service that must refuse to start: it exits on its own, quickly."""
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("module", "prefix"), [("chorus_agent", "AGENT_"), ("hmmm_monitor", "MONITOR_")]
)
@pytest.mark.parametrize("problem", ["malformed", "missing", "bad_extra_key"])
def test_a_bad_key_file_stops_the_service_with_one_line(
    tmp_path: Path, module: str, prefix: str, problem: str
) -> None:
    good = write_swarm_key(tmp_path / "good.key")
    bad = tmp_path / "swarm.key"
    if problem != "missing":
        bad.write_text("/key/swarm/psk/1.0.0/\n/base16/\nnot-hex-at-all\n")
    env = {
        f"{prefix}HOST": "127.0.90.200",
        f"{prefix}PORT": "18080",
        f"{prefix}P2P_HOST": "127.0.90.200",
        f"{prefix}PNET_KEY_FILE": str(good if problem == "bad_extra_key" else bad),
    }
    if problem == "bad_extra_key":
        env[f"{prefix}PNET_ACCEPT_KEY_FILES"] = str(bad)
    done = _run_service(module, env)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr  # one clear line, no traceback
    assert "refusing to start" in lines[0] and str(bad) in lines[0]
    assert EXPECTED_FORMAT in lines[0]
    assert "listening" not in done.stderr and "Uvicorn running" not in done.stderr


@pytest.fixture(scope="module")
def keyed_mesh(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    mesh = LocalMesh(LAYOUT, run_dir=tmp_path_factory.mktemp("pnet"))
    mesh.build()
    # A third agent with no key: it must warn, and the keyed ones must refuse it.
    open_agent = mesh.agent_process(3, AGENT_PNET_KEY_FILE="")
    try:
        mesh.start()
        open_agent.start()
        mesh.wait_for(
            lambda: mesh.get_json(f"{LAYOUT.monitor_url}/api/v1/coverage")["heard"] == 2,
            timeout=120,
            what="the monitor hears both keyed agents",
        )
        yield mesh, open_agent
    finally:
        open_agent.terminate()
        open_agent.wait_or_kill(10)
        mesh.stop()


def test_a_keyed_mesh_says_so_counts_refusals_and_never_shows_the_key(keyed_mesh) -> None:  # type: ignore[no-untyped-def]
    mesh, open_agent = keyed_mesh
    key_hex = read_swarm_key(mesh.swarm_key_path).key.hex()
    a1 = mesh.get_json(f"{LAYOUT.agent_url(1)}/api/health")
    assert a1["private_network"] is True
    monitor = mesh.get_json(f"{LAYOUT.monitor_url}/api/health")
    assert monitor["private_network"] is True

    # A node without the key dials agent-01: refused, named no_key, counted.
    async def dial_open() -> bool:
        intruder = MeshRuntime(MeshNode(NodeConfig("127.0.90.150", 9000)))
        await intruder.start()
        try:
            return (await intruder.connect(a1["peer_id"], a1["multiaddrs"])).connected
        finally:
            await intruder.stop()

    import asyncio

    assert asyncio.run(dial_open()) is False

    def counted() -> bool:
        refused = mesh.get_json(f"{LAYOUT.agent_url(1)}/api/health")["pnet_refused"]
        return refused.get("inbound", {}).get("no_key", 0) >= 1

    mesh.wait_for(counted, timeout=10, what="agent-01 counts the no_key refusal")
    metrics = httpx.get(f"{LAYOUT.agent_url(1)}/metrics", timeout=5).text
    assert 'chorus_agent_pnet_refused_total{direction="inbound",reason="no_key"}' in metrics
    assert (
        'hmmm_pnet_refused_total{direction="inbound",reason="wrong_key"} 0.0'
        in httpx.get(f"{LAYOUT.monitor_url}/metrics", timeout=5).text
    )

    # The open agent runs, warns, and is told apart in its health.
    open_health = mesh.get_json(open_agent.url + "/api/health")
    assert open_health["private_network"] is False
    open_log = open_agent.log_path.read_text()
    assert "open mesh: any libp2p peer that reaches port 9000 can join" in open_log
    assert "AGENT_PNET_KEY_FILE" in open_log

    # The key is nowhere: logs, metrics, API answers.
    answers = [
        httpx.get(f"{url}{path}", timeout=5).text
        for url in (LAYOUT.agent_url(1), LAYOUT.agent_url(2), LAYOUT.monitor_url)
        for path in ("/api/health", "/metrics", "/api/v1/mesh")
    ]
    logs = [p.log_path.read_text() for p in mesh.processes]
    assert "private network on" in logs[-1]
    for text in answers + logs:
        assert key_hex not in text and key_hex.upper() not in text
