"""Bad input at process level: misbehaving agents behind WHOOSH, garbage gossip at the
monitor. Each gets a clear log line and a counted reason; nothing crashes; the real
agents are unaffected."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from meshcommon import topics
from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig
from meshcommon.swarm_key import read_swarm_key
from meshlocal import LocalMesh, MeshLayout

from .fake_agents import fake_agents

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bad_mesh(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalMesh, dict[str, str]]]:
    layout = MeshLayout(
        agents=2,
        agent_net="127.0.80",
        whoosh_ip="127.0.81.2",
        monitor_ip="127.0.81.3",
        broadcast_interval_s=2.0,
    )
    with fake_agents("127.0.79") as fakes:
        real = [layout.agent_url(i) for i in (1, 2)]
        mesh = LocalMesh(
            layout,
            run_dir=tmp_path_factory.mktemp("bad-input"),
            extra_env={
                "whoosh": {
                    "WHOOSH_STATIC_AGENTS": ",".join(real + list(fakes.values())),
                    "WHOOSH_HEALTH_TIMEOUT_S": "1",
                    "WHOOSH_HEALTH_ATTEMPTS": "2",
                    # The fakes are about bad HTTP answers and addresses, not about keys:
                    # judged as a mixed fleet's unsigned agents (the real ones sign).
                    "WHOOSH_UNSIGNED_HEALTH": "accept",
                }
            },
        )
        try:
            mesh.start()
            yield mesh, fakes
        finally:
            mesh.stop()


def _agents(mesh: LocalMesh) -> dict:
    return mesh.get_json(f"{mesh.layout.whoosh_url}/api/v1/agents")


def test_whoosh_names_each_bad_agent_and_keeps_the_good_ones(bad_mesh) -> None:
    mesh, fakes = bad_mesh

    def settled() -> bool:
        body = _agents(mesh)
        return body["summary"]["healthy"] == 2 and body["summary"]["unreachable"] == 4

    mesh.wait_for(settled, timeout=120, what="2 healthy + 4 unreachable in WHOOSH")
    body = _agents(mesh)
    by_url = {a["url"].rstrip("/"): a for a in body["agents"]}
    assert body["summary"]["expected"] == 6
    assert by_url[fakes["malformed_json"]]["reason"] == "malformed_json"
    assert by_url[fakes["http_500"]]["reason"] == "http_500"
    assert by_url[fakes["hang"]]["reason"] == "timeout"
    bad = by_url[fakes["bad_multiaddrs"]]
    assert bad["reason"] == "no_routable_multiaddrs"
    assert {r["reason"] for r in bad["rejected_multiaddrs"]} == {
        "invalid_multiaddr",
        "peer_id_mismatch",
    }
    boot = mesh.get_json(f"{mesh.layout.whoosh_url}/api/v1/bootstrap-peers")
    assert boot["count"] == 2
    log = mesh.service("whoosh").log_path.read_text()
    for reason in ("malformed_json", "http_500", "timeout", "no_routable_multiaddrs"):
        assert reason in log, f"no log line for {reason}"
    metrics = _get_text(f"{mesh.layout.whoosh_url}/metrics")
    assert 'whoosh_multiaddrs_rejected_total{reason="peer_id_mismatch"}' in metrics


def _get_text(url: str) -> str:
    import httpx

    return httpx.get(url, timeout=5).text


def test_monitor_counts_garbage_gossip_and_keeps_hearing_agents(bad_mesh) -> None:
    mesh, _ = bad_mesh
    cov_url = f"{mesh.layout.monitor_url}/api/v1/coverage"
    mesh.wait_for(
        lambda: mesh.get_json(cov_url)["heard"] == 2,
        timeout=120,
        what="monitor hears both real agents",
    )
    health = mesh.get_json(f"{mesh.layout.monitor_url}/api/health")

    async def send_garbage() -> None:
        # A mesh member (the run's swarm.key) sending garbage: validation's case.
        keys = (read_swarm_key(mesh.swarm_key_path).key,)
        rogue = MeshRuntime(
            MeshNode(NodeConfig(listen_host="127.0.81.9", port=9000, pnet_keys=keys))
        )
        await rogue.start()
        try:
            outcome = await rogue.connect(health["peer_id"], health["multiaddrs"])
            assert outcome.connected, outcome

            def rejected() -> dict:
                return mesh.get_json(cov_url)["dropped"]["rejected"]

            deadline = asyncio.get_running_loop().time() + 30
            while True:  # publish until the monitor has counted both (mesh forming)
                await rogue.publish(topics.META_DISCUSSION, b"{this is not json")
                await rogue.publish(
                    topics.CONTEXT_FEEDBACK, b'{"type":"x","pad":"' + b"x" * 100_000 + b'"}'
                )
                counted = await asyncio.to_thread(rejected)
                if counted.get("invalid_json", 0) >= 1 and counted.get("oversized", 0) >= 1:
                    return
                assert asyncio.get_running_loop().time() < deadline, counted
                await asyncio.sleep(0.5)
        finally:
            await rogue.stop()

    asyncio.run(send_garbage())
    log = mesh.service("hmmm-monitor").log_path.read_text()
    assert "invalid_json" in log and "oversized" in log
    # The agents keep being heard and nothing crashed.
    mesh.wait_for(
        lambda: mesh.get_json(cov_url)["heard"] == 2, timeout=60, what="agents still heard"
    )
    assert [p.name for p in mesh.processes if not p.alive()] == []
