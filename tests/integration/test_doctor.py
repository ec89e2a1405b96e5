"""The mesh doctor against real processes: every fault is made for real and the doctor
(`python -m hmmm_monitor doctor`, run as a command) must name it with its evidence and fix;
on the healthy mesh it finds nothing at warning or above.

One 3-agent mesh (127.0.140.x, WHOOSH and the monitor on 127.0.141.x) for the module; each
test adds its faults and takes them away again:

- a faulty mesh: agents WHOOSH lists but that cannot work (only loopback to advertise, two
  agents with one identity, one announcing another agent's address, one announcing a wrong
  p2p port, one that does not run at all), an old build subscribed to
  ``chorus/coordination/v1``, and an agent whose clock is five minutes behind;
- a firewall that blocks one agent's p2p port (iptables, root only);
- bad input to the doctor itself: an unreachable URL, a service without the endpoint (an
  older version), an answer that is not JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from meshcommon import topics
from meshcommon.diagnosis import at_least
from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig
from meshcommon.p2p.records import PeerRecordSigner
from meshcommon.swarm_key import read_swarm_key
from meshlocal import LocalMesh, MeshLayout, ServiceProcess

from .conftest import unavailable
from .doctor_cli import doctor
from .firewall import iptables, remove_chain

pytestmark = pytest.mark.integration

N = 3
NET = "127.0.140"  # agents 127.0.140.k; extra agents of the faulty mesh 127.0.140.4-10
PEERS_NET = "127.0.142"  # in-test libp2p peers
LAYOUT = MeshLayout(
    agents=N,
    agent_net=NET,
    whoosh_ip="127.0.141.2",
    monitor_ip="127.0.141.3",
    broadcast_interval_s=2.0,
)
GID_MONITOR = 64_140
CHAIN = "CHORUS_TEST_DOCTOR"
TYPO = "chorus/coordination/v1"


@pytest.fixture(scope="module")
def dmesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    mesh = LocalMesh(
        LAYOUT,
        run_dir=tmp_path_factory.mktemp("doctor"),
        extra_env={
            # A broadcast every 2 s; a window of 8 s tolerates a busy machine. Agents that
            # leave WHOOSH's list are forgotten after 8 s, so each test ends clean.
            "hmmm-monitor": {"MONITOR_HEARD_WINDOW_S": "8", "MONITOR_FORGET_AFTER_S": "8"},
        },
    )
    mesh.build()
    if os.geteuid() == 0:
        mesh.service("hmmm-monitor").gid = GID_MONITOR
    try:
        mesh.start()
        mesh.wait_for(lambda: _full(mesh), timeout=120, what=f"coverage {N}/{N}")
        yield mesh
    finally:
        mesh.stop()
        if request.session.testsfailed:
            print(f"run dir: {mesh.run_dir}\n{mesh.log_tail()}")


# -- readings ---------------------------------------------------------------------------
def _full(mesh: LocalMesh) -> bool:
    cov = mesh.get_json(f"{mesh.layout.monitor_url}/api/v1/coverage")
    return (cov["expected"], cov["connected"], cov["heard"]) == (N, N, N)


def _diagnosis(url: str) -> dict[str, Any]:
    import httpx

    resp = httpx.get(f"{url}/api/v1/diagnosis", timeout=10)
    resp.raise_for_status()
    return dict(resp.json())


def _findings(mesh: LocalMesh, monitor_url: str | None = None) -> dict[str, list[dict]]:
    """Both services' findings by id (what the doctor gathers), read over HTTP."""
    out: dict[str, list[dict]] = {}
    for url in (mesh.layout.whoosh_url, monitor_url or mesh.layout.monitor_url):
        for f in _diagnosis(url)["findings"]:
            out.setdefault(f["id"], []).append(f)
    return out


def _serious(found: dict[str, list[dict]]) -> dict[str, list[dict]]:
    return {
        fid: fs for fid, fs in found.items() if any(at_least(f["severity"], "warning") for f in fs)
    }


def _doctor_json(mesh: LocalMesh, monitor_url: str | None = None) -> tuple[int, dict]:
    code, out, _ = doctor(
        "--whoosh", mesh.layout.whoosh_url, "--monitor", monitor_url or mesh.layout.monitor_url,
        "--json",
    )  # fmt: skip
    return code, json.loads(out)


def _agent_ids(mesh: LocalMesh) -> dict[int, str]:
    return {
        i: str(mesh.get_json(f"{mesh.layout.agent_url(i)}/api/health")["peer_id"])
        for i in range(1, N + 1)
    }


def _clean(mesh: LocalMesh) -> bool:
    return _full(mesh) and not _serious(_findings(mesh))


def dashboard_dom(url: str) -> str:
    """The dashboard's DOM after its scripts ran, in headless Chromium."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                capture_output=True,
                timeout=600,
                check=False,
            )
        browser = shutil.which("chromium")
    if browser is None:
        unavailable("chromium is not installed and apt-get could not install it")
    proc = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--virtual-time-budget=10000", "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


# -- 1. healthy ---------------------------------------------------------------------------
def test_healthy_mesh_doctor_passes(dmesh: LocalMesh) -> None:
    mesh = dmesh
    waited = mesh.wait_for(lambda: _clean(mesh), timeout=120, what="no finding at warning+")
    code, text, took = doctor("--whoosh", mesh.layout.whoosh_url, "--monitor", LAYOUT.monitor_url)
    print(f"\nhealthy after {waited:.1f}s; doctor took {took:.2f}s:\n{text}")
    assert code == 0, text
    assert "0 critical, 0 warning" in text and "-> pass" in text
    code, doc = _doctor_json(mesh)
    assert (
        code == 0 and doc["services"]["whoosh"]["reached"] and doc["services"]["monitor"]["reached"]
    )
    # WHOOSH runs on static discovery without a Docker socket: its Swarm checks say so.
    assert {s["check"] for s in doc["services"]["whoosh"]["skipped"]} >= {"agent_service_vip"}

    dom = dashboard_dom(f"{mesh.layout.monitor_url}/")
    assert 'id="findings"' in dom and "critical ·" in dom
    assert 'class="finding critical"' not in dom and 'class="finding warning"' not in dom


# -- 2. a faulty mesh -----------------------------------------------------------------------
class _Health(BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/api/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _serve_health(ip: str, body: dict[str, Any]) -> Iterator[str]:
    """An agent of an old build: its own /api/health on ip:8080."""
    handler = type("Health", (_Health,), {"body": json.dumps(body).encode()})
    server = ThreadingHTTPServer((ip, 8080), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{ip}:8080"
    finally:
        server.shutdown()
        server.server_close()


def _availability(node: MeshRuntime, name: str, peers: list[str], clock_offset_s: float) -> bytes:
    now = datetime.now(UTC) + timedelta(seconds=clock_offset_s)
    body = {
        "type": "availability",
        "node_id": node.peer_id,
        "available_for_work": True,
        "current_tasks": 0,
        "max_tasks": 1,
        "last_activity": now.isoformat(),
        "status": "available",
        "timestamp": now.isoformat(),
        "name": name,
        "peers": peers,
    }
    return json.dumps(body).encode()


class _PeerThread:
    """In-test libp2p peers (the old build and the agent with a slow clock), run on their
    own asyncio loop in a thread while the test polls the services."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _set_whoosh_agents(mesh: LocalMesh, urls: list[str], overlay: str = "") -> None:
    """Restart WHOOSH with another static agent list and overlay (what an operator's
    config change is)."""
    whoosh = mesh.service("whoosh")
    whoosh.env["WHOOSH_STATIC_AGENTS"] = ",".join(urls)
    whoosh.env["WHOOSH_OVERLAY_CIDRS"] = overlay
    whoosh.terminate()
    whoosh.wait_or_kill(15)
    whoosh.start()


def test_faulty_mesh_every_fault_named_with_evidence_and_fix(dmesh: LocalMesh) -> None:
    mesh = dmesh
    mesh.wait_for(lambda: _clean(mesh), timeout=120, what="a clean mesh before the faults")
    ids = _agent_ids(mesh)
    run_dir = mesh.run_dir
    shared_key = run_dir / "shared-identity.key"
    shared_key.write_bytes(secrets.token_bytes(32))  # one identity for two agents
    a1 = f"/ip4/{NET}.1/tcp/9000"
    extras: list[ServiceProcess] = [
        mesh.agent_process(4, AGENT_ALLOW_LOOPBACK="false"),  # only 127.x to advertise
        mesh.agent_process(5, AGENT_IDENTITY_PATH=str(shared_key)),
        mesh.agent_process(6, AGENT_IDENTITY_PATH=str(shared_key)),
        mesh.agent_process(7, AGENT_ANNOUNCE_ADDRS=a1),  # agent-01's address
        mesh.agent_process(8, AGENT_ANNOUNCE_ADDRS=f"/ip4/{NET}.8/tcp/9999"),  # wrong port
        # libp2p only on another network than the others' (a node-local docker_gwbridge
        # address, in a Swarm): HTTP on the agents' network, p2p off it.
        mesh.agent_process(11, AGENT_P2P_HOST=f"{PEERS_NET}.11"),
    ]
    missing_url = f"http://{NET}.9:8080"  # listed, never started
    peers = _PeerThread()
    keys = (read_swarm_key(mesh.swarm_key_path).key,)  # members of the closed mesh
    old_build = MeshRuntime(MeshNode(NodeConfig(f"{NET}.10", 9000, topics=(TYPO,), pnet_keys=keys)))
    slow_clock = MeshRuntime(MeshNode(NodeConfig(f"{PEERS_NET}.2", 9000, pnet_keys=keys)))
    publishing = threading.Event()
    original = mesh.service("whoosh").env["WHOOSH_STATIC_AGENTS"]
    try:
        for proc in extras:
            proc.start()
        peers.run(old_build.start())
        peers.run(slow_clock.start())
        old_addrs = [f"/ip4/{NET}.10/tcp/9000/p2p/{old_build.peer_id}"]
        old_health = {
            "peer_id": old_build.peer_id,
            "name": "old-build",
            "multiaddrs": old_addrs,
            "gossipsub_topics": [TYPO],
            # A member (it holds its key and the mesh's): the fault is the topic's name.
            "peer_record": PeerRecordSigner(old_build.node.key_pair).record_for(old_addrs),
        }
        with _serve_health(f"{NET}.10", old_health) as old_url:
            urls = [LAYOUT.agent_url(i) for i in range(1, 9)]
            urls += [missing_url, old_url, LAYOUT.agent_url(11)]
            _set_whoosh_agents(mesh, urls, overlay=f"{NET}.0/24")
            # An agent five minutes behind, joined through agent-01, broadcasting.
            assert peers.run(slow_clock.connect(ids[1], [f"{a1}/p2p/{ids[1]}"])).connected

            async def broadcast() -> None:
                while not publishing.is_set():
                    body = _availability(slow_clock, "slow-clock", [ids[1]], -300)
                    await slow_clock.publish(topics.COORDINATION, body)
                    await asyncio.sleep(1)

            task = asyncio.run_coroutine_threadsafe(broadcast(), peers.loop)
            expected = {
                "agent_no_routable_address",
                "peer_id_duplicate",
                "address_shared",
                "agents_missing",
                "agent_off_overlay",
                "topic_near_miss",
                "p2p_port_unreachable",
                "peer_id_mismatch",
                "clock_skew",
            }
            seen: set[str] = set()

            def all_named() -> bool:
                seen.clear()
                seen.update(_serious(_findings(mesh)))
                return expected <= seen

            try:
                waited = mesh.wait_for(
                    all_named, timeout=120, interval=2, what=f"findings {sorted(expected)}"
                )
            except TimeoutError as exc:
                raise AssertionError(f"never named: {sorted(expected - seen)}") from exc
            found = _findings(mesh)
            code, text, took = doctor(
                "--whoosh", LAYOUT.whoosh_url, "--monitor", LAYOUT.monitor_url
            )
            print(f"\nfaults named after {waited:.1f}s; doctor took {took:.2f}s:\n{text}")
            assert code == 1 and "-> fail" in text
            dom = dashboard_dom(f"{mesh.layout.monitor_url}/")
            publishing.set()
            task.result(30)
    finally:
        publishing.set()
        with contextlib.suppress(Exception):
            peers.run(old_build.stop())
            peers.run(slow_clock.stop())
        peers.close()
        for proc in extras:
            proc.terminate()
        for proc in extras:
            proc.wait_or_kill(15)
        _set_whoosh_agents(mesh, original.split(","))

    def one(fid: str, source: str) -> dict:
        (f,) = [f for f in found[fid] if f["source"] == source]
        return f

    # WHOOSH: the loopback-only agent, with what it could not advertise.
    lo = one("agent_no_routable_address", "whoosh")
    (row,) = lo["evidence"]["agents"]
    assert row["url"] == LAYOUT.agent_url(4) and row["name"] == "agent-04"
    assert {r["reason"] for r in row["not_advertised_by_agent"]} == {"loopback"}
    assert "AGENT_P2P_HOST" in lo["fix"]
    # One peer ID at two hosts.
    dup = one("peer_id_duplicate", "whoosh")
    assert sorted(dup["evidence"]["targets"]) == [LAYOUT.agent_url(5), LAYOUT.agent_url(6)]
    assert "AGENT_IDENTITY_PATH" in dup["fix"]
    # One address advertised by two peers: agent-01's own, and agent-07's copy of it.
    shared = one("address_shared", "whoosh")
    assert shared["evidence"]["address"] == a1
    assert {p["name"] for p in shared["evidence"]["peers"]} == {"agent-01", "agent-07"}
    # The agent that never started is missing, with the real cause.
    missing = {r["url"]: r for r in one("agents_missing", "whoosh")["evidence"]["missing"]}
    assert missing[missing_url]["reason"] == "connect_error"
    assert missing[LAYOUT.agent_url(4)]["reason"] == "no_routable_multiaddrs"
    # The agent whose only address is off the agents' network.
    off = one("agent_off_overlay", "whoosh")
    (row,) = off["evidence"]["agents"]
    assert row["name"] == "agent-11" and off["evidence"]["overlay"] == [f"{NET}.0/24"]
    assert row["multiaddrs"][0].startswith(f"/ip4/{PEERS_NET}.11/tcp/9000/p2p/")
    assert "AGENT_OVERLAY_CIDRS" in off["fix"]
    # The old build's topic, seen by WHOOSH (its health) and by the monitor (its
    # GossipSub announcement).
    for source in ("whoosh", "monitor"):
        typo = one("topic_near_miss", source)
        assert (typo["evidence"]["topic"], typo["evidence"]["known_topic"]) == (
            TYPO,
            topics.COORDINATION,
        )
        assert typo["evidence"]["differs_by"] == ["case"]
    monitor_typo = one("topic_near_miss", "monitor")
    assert monitor_typo["evidence"]["peers"] == [
        {"peer_id": old_build.peer_id, "name": "old-build"}
    ]
    # The monitor: agent-08's advertised port refuses, while WHOOSH's health check answers.
    port = one("p2p_port_unreachable", "monitor")
    (row,) = port["evidence"]["agents"]
    assert (row["name"], row["reason"]) == ("agent-08", "connection_refused")
    assert port["evidence"]["ports"] == [9999] and "AGENT_P2P_PORT" in port["fix"]
    # Dialling agent-07 at agent-01's address reaches agent-01.
    mismatch = one("peer_id_mismatch", "monitor")
    (row,) = mismatch["evidence"]["agents"]
    assert row["name"] == "agent-07" and row["answered_by"] == ids[1]
    # The old build publishes where nobody listens: connected, yet never heard.
    quiet = one("agents_not_heard", "monitor")
    assert ("old-build", True) in [
        (r["name"], r["connected"]) for r in quiet["evidence"]["missing"]
    ]
    # The slow clock: five minutes, named.
    skew = one("clock_skew", "monitor")
    (row,) = skew["evidence"]["agents"]
    assert row["peer_id"] == slow_clock.peer_id and row["name"] == "slow-clock"
    assert 290 <= row["offset_s"] <= 330
    # The dashboard shows the same findings.
    for fid in ("clock_skew", "p2p_port_unreachable", "peer_id_mismatch", "topic_near_miss"):
        assert f'data-id="{fid}"' in dom, fid
    assert 'class="finding critical"' in dom

    # Every fault gone: so are the findings.
    healed = mesh.wait_for(lambda: _clean(mesh), timeout=120, interval=2, what="clean again")
    print(f"clean again {healed:.1f}s after the faults were removed")


# -- 3. a firewall in front of one agent's p2p port ------------------------------------------
def test_blocked_p2p_port_is_named(dmesh: LocalMesh) -> None:
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        unavailable("needs root and iptables (a firewall rule for the monitor's group)")
    mesh = dmesh
    mesh.wait_for(lambda: _clean(mesh), timeout=120, what="a clean mesh before the firewall")
    remove_chain(CHAIN)
    try:
        iptables("-N", CHAIN)
        # The monitor's packets to agent-03's libp2p port are refused; HTTP (WHOOSH's
        # health check, another process) still answers.
        iptables(
            "-A", CHAIN, "-p", "tcp", "-m", "owner", "--gid-owner", str(GID_MONITOR),
            "-d", f"{NET}.3", "--dport", "9000", "-j", "REJECT", "--reject-with", "tcp-reset",
        )  # fmt: skip
        iptables("-I", "OUTPUT", "1", "-j", CHAIN)

        def named() -> bool:
            return "p2p_port_unreachable" in _serious(_findings(mesh))

        waited = mesh.wait_for(named, timeout=120, interval=2, what="p2p_port_unreachable")
        (f,) = _findings(mesh)["p2p_port_unreachable"]
    finally:
        remove_chain(CHAIN)
    (row,) = f["evidence"]["agents"]
    assert (row["name"], row["reason"], row["in_bootstrap"]) == (
        "agent-03",
        "connection_refused",
        True,
    )
    assert row["failed_dials_in_a_row"] >= 2 and row["failing_for_s"] >= 30
    assert "answer WHOOSH's HTTP health check" in f["title"]
    print(f"\nfirewall named after {waited:.1f}s")
    mesh.wait_for(lambda: _clean(mesh), timeout=120, interval=2, what="clean after the firewall")


# -- 5. bad input to the doctor --------------------------------------------------------------
def test_bad_input_gives_a_finding_never_a_traceback(dmesh: LocalMesh) -> None:
    mesh = dmesh

    class Html(_Health):
        body = b"<html><body>502 Bad Gateway</body></html>"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)

    server = ThreadingHTTPServer((f"{PEERS_NET}.3", 8080), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # An agent answers HTTP but has no diagnosis: as an old WHOOSH would (404).
        code, text, _ = doctor(
            "--whoosh", LAYOUT.agent_url(1), "--monitor", f"http://{PEERS_NET}.3:8080", "--json"
        )
        doc = json.loads(text)
        by_id = {f["id"]: f for f in doc["findings"]}
        assert code == 1
        assert by_id["diagnosis_unsupported"]["evidence"]["status"] == 404
        assert "<html><body>502 Bad Gateway" in by_id["diagnosis_failed"]["evidence"]["answer"]
        # Nothing listens there.
        code, text, _ = doctor("--whoosh", f"http://{PEERS_NET}.4:8080", "--timeout", "5")
        assert code == 1 and "Cannot reach WHOOSH" in text and "ConnectError" in text
        # Not a URL at all: a usage error.
        code, text, _ = doctor("--whoosh", "not a url")
        assert code == 2 and "is not an http(s) URL" in text
    finally:
        server.shutdown()
        server.server_close()
    assert [p.name for p in mesh.processes if not p.alive()] == []
