"""Validation before forwarding, at process level: a peer attached to one agent (agent-05)
sends garbage (not JSON, a bad availability schema, a node_id forged as agent-01's, an
oversized payload), 20 messages a second, and keeps sending after agent-05 prunes it from
its mesh, as an attacker does. It goes no further than agent-05, which counts it by reason
and ends up graylisting the peer; no other agent and not the monitor ever sees it; the
agents' own broadcasts still reach everyone (10/10 heard)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from meshcommon import topics
from meshcommon.gossip import (
    REASON_INVALID_JSON,
    REASON_INVALID_SCHEMA,
    REASON_NODE_ID_NOT_SIGNER,
    REASON_OVERSIZED,
)
from meshlocal import LocalMesh, MeshLayout

from .doctor_cli import doctor
from .hostile import BackgroundNode, mesh_node_config

pytestmark = pytest.mark.integration

LAYOUT = MeshLayout(
    agents=10,
    agent_net="127.0.92",  # agents 127.0.92.1-10
    whoosh_ip="127.0.92.102",
    monitor_ip="127.0.92.103",
    broadcast_interval_s=3.0,
)
GARBAGE_IP = "127.0.92.120"
FIRST_HOP = 5
REASONS = {REASON_INVALID_JSON, REASON_INVALID_SCHEMA, REASON_NODE_ID_NOT_SIGNER, REASON_OVERSIZED}


@pytest.fixture(scope="module")
def vmesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    local = LocalMesh(LAYOUT, run_dir=tmp_path_factory.mktemp("validation"))
    try:
        local.start()
        yield local
    finally:
        local.stop()
        if request.session.testsfailed:
            print(local.log_tail())


def _mesh_view(mesh: LocalMesh, url: str) -> dict[str, Any]:
    return mesh.get_json(f"{url}/api/v1/mesh")


def _rejected(view: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for by_reason in view["validation"]["rejected"].values():
        for reason, n in by_reason.items():
            out[reason] = out.get(reason, 0) + n
    return out


def _garbage(me: str, victim: str) -> list[tuple[str, bytes]]:
    availability = {
        "type": "availability",
        "node_id": me,
        "available_for_work": True,
        "current_tasks": 0,
        "max_tasks": 1,
        "last_activity": "2026-01-01T00:00:00Z",
        "status": "available",
    }
    return [
        (topics.META_DISCUSSION, b"{this is not json"),
        (topics.COORDINATION, json.dumps({**availability, "max_tasks": "many"}).encode()),
        (topics.COORDINATION, json.dumps({**availability, "node_id": victim}).encode()),
        (topics.CONTEXT_FEEDBACK, b'{"type":"x","pad":"' + b"x" * 70_000 + b'"}'),
    ]


def test_garbage_stops_at_the_first_hop_and_its_sender_is_graylisted(vmesh: LocalMesh) -> None:
    mesh = vmesh
    started = time.monotonic()
    cov_url = f"{LAYOUT.monitor_url}/api/v1/coverage"
    mesh.wait_for(lambda: mesh.get_json(cov_url)["heard"] == 10, timeout=180, what="10/10 heard")
    first_hop = mesh.get_json(f"{LAYOUT.agent_url(FIRST_HOP)}/api/health")
    victim = mesh.get_json(f"{LAYOUT.agent_url(1)}/api/health")["peer_id"]

    peer = BackgroundNode(GARBAGE_IP, config=mesh_node_config(mesh, GARBAGE_IP))
    stop = threading.Event()
    sent = [0]

    def send() -> None:
        payloads = _garbage(peer.peer_id, victim)
        while not stop.wait(0.2):  # 20 invalid messages a second
            for topic, data in payloads:
                try:
                    peer.call(peer.node.publish, topic, data)
                    sent[0] += 1
                except Exception:
                    return

    sender = threading.Thread(target=send, daemon=True)
    peer.start()
    try:
        outcome = peer.call(peer.node.connect, first_hop["peer_id"], first_hop["multiaddrs"])
        assert outcome.connected, outcome
        # An attacker: agent-05 prunes it from its mesh about a heartbeat (1 s) after its
        # first invalid message; it keeps sending anyway.
        peer.ignore_prune_from(first_hop["peer_id"])
        garbage_from = time.monotonic()
        sender.start()
        hop_url = LAYOUT.agent_url(FIRST_HOP)

        def counted_and_graylisted() -> bool:
            view = _mesh_view(mesh, hop_url)
            scoring = view["scoring"]
            health = mesh.get_json(f"{hop_url}/api/health")  # what WHOOSH reads
            return (
                set(_rejected(view)) >= REASONS
                and peer.peer_id in scoring["graylisted"]
                and scoring["graylist_ignored_rpcs"] > 0
                and peer.peer_id in health["graylisted_peers"]
                and set(health["gossip_rejected"]) >= REASONS
            )

        mesh.wait_for(
            counted_and_graylisted, timeout=60, what="agent-05 counts each reason, graylists"
        )
        took = time.monotonic() - garbage_from
        view = _mesh_view(mesh, hop_url)
        row = next(p for p in view["scoring"]["peers"] if p["peer_id"] == peer.peer_id)
        assert row["score"] <= view["scoring"]["graylist_threshold"] or row["graylistings"] >= 1
        assert row["graylisted_since"] and row["graylisted_until"]
        text = httpx.get(f"{hop_url}/metrics", timeout=5).text
        assert (
            'chorus_agent_messages_rejected_total{reason="node_id_not_signer",'
            'topic="CHORUS/coordination/v1"}' in text
        )
        assert "chorus_agent_gossip_graylistings_total 0.0" not in text
        print(
            f"agent-05 graylisted the garbage peer {took:.1f} s after its first message "
            f"({sent[0]} sent; rejected {_rejected(view)}; "
            f"{view['scoring']['graylist_ignored_rpcs']} RPCs ignored)"
        )

        # The doctor names it, with the agent that graylists it (WHOOSH reads the health).
        def whoosh_names_it() -> bool:
            found = mesh.get_json(f"{LAYOUT.whoosh_url}/api/v1/diagnosis")["findings"]
            rows = [
                p for f in found if f["id"] == "peer_graylisted" for p in f["evidence"]["peers"]
            ]
            return any(
                r["peer_id"] == peer.peer_id
                and [h["name"] for h in r["graylisted_by"]] == [f"agent-{FIRST_HOP:02d}"]
                for r in rows
            )

        mesh.wait_for(whoosh_names_it, timeout=60, what="WHOOSH to name the graylisted peer")
        code, out, _ = doctor("--whoosh", LAYOUT.whoosh_url, "--monitor", LAYOUT.monitor_url)
        assert code == 1 and "peer_graylisted" in out and peer.peer_id in out, out

        # Nobody beyond the first hop ever saw it: no rejection anywhere else.
        for i in range(1, LAYOUT.agents + 1):
            if i != FIRST_HOP:
                other = _mesh_view(mesh, LAYOUT.agent_url(i))
                assert other["validation"]["enabled"] is True
                assert _rejected(other) == {}, f"agent-{i:02d} received garbage"
                assert peer.peer_id not in other["scoring"]["graylisted"]
        monitor_view = _mesh_view(mesh, LAYOUT.monitor_url)
        assert _rejected(monitor_view) == {}
        cov = mesh.get_json(cov_url)
        assert not any(cov["dropped"]["rejected"].values()), cov["dropped"]
        peers_url = f"{LAYOUT.monitor_url}/api/v1/peers"
        assert peer.peer_id not in {r["peer_id"] for r in mesh.get_json(peers_url)["peers"]}
        # The agents' broadcasts keep reaching the monitor with the garbage flowing: each
        # of the 10 is heard again (a new message from every one).
        before = {r["peer_id"]: r["messages_heard"] for r in mesh.get_json(peers_url)["peers"]}

        def all_heard_again() -> bool:
            rows = mesh.get_json(peers_url)["peers"]
            return sum(1 for r in rows if r["messages_heard"] > before.get(r["peer_id"], 0)) == 10

        mesh.wait_for(all_heard_again, timeout=60, what="10/10 heard again")
        assert mesh.get_json(cov_url)["heard"] == 10
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(10)
        peer.stop()
    print(f"test took {time.monotonic() - started:.0f} s")
