"""Signed peer records on the standard wire, checked against js-libp2p (@libp2p/peer-record):
a record js-libp2p seals is verified by meshcommon.peer_record (what WHOOSH runs, without
libp2p), and a real agent process's ``peer_record`` from ``/api/health`` is opened and
certified by js-libp2p (RecordEnvelope.openAndCertify) and listed as signed by a real WHOOSH."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshcommon import peer_record
from meshlocal import LocalMesh, MeshLayout

pytestmark = pytest.mark.integration

LAYOUT = MeshLayout(
    agents=1,
    agent_net="127.0.91",
    whoosh_ip="127.0.91.102",
    monitor_ip="127.0.91.103",
    broadcast_interval_s=2.0,
)


def js_record(js_dir: Path, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", "--import", "./polyfill.mjs", "record.mjs", *args],
        cwd=js_dir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


def test_a_record_js_libp2p_seals_is_verified_by_meshcommon(js_libp2p: Path) -> None:
    seq = time.time_ns()
    addrs = ["/ip4/127.0.91.1/tcp/9000", "/ip6/::1/tcp/9001"]
    sealed = js_record(js_libp2p, "seal", str(seq), *addrs)
    envelope = base64.b64decode(sealed["envelope"])
    rec = peer_record.open_peer_record(
        envelope, expected_peer_id=sealed["peer_id"], now_ns=time.time_ns()
    )
    assert (rec.peer_id, rec.seq, list(rec.addresses)) == (sealed["peer_id"], seq, addrs)
    # The same bytes, one bit off in the signature: refused with its reason.
    tampered = envelope[:-1] + bytes([envelope[-1] ^ 1])
    with pytest.raises(peer_record.RecordRejected) as info:
        peer_record.open_peer_record(
            tampered, expected_peer_id=sealed["peer_id"], now_ns=time.time_ns()
        )
    assert info.value.reason == "bad_signature"


@pytest.fixture(scope="module")
def one_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = LocalMesh(LAYOUT, run_dir=tmp_path_factory.mktemp("records"))
    try:
        mesh.start()
        yield mesh
    finally:
        mesh.stop()


def test_a_real_agents_record_is_certified_by_js_libp2p_and_listed_by_whoosh(
    one_agent: LocalMesh, js_libp2p: Path
) -> None:
    mesh = one_agent
    health: dict[str, Any] = {}

    def answers() -> bool:
        health.update(mesh.get_json(f"{LAYOUT.agent_url(1)}/api/health"))
        return bool(health.get("peer_record"))

    mesh.wait_for(answers, timeout=60, what="agent-01 answers with a peer record")
    opened = js_record(js_libp2p, "open", health["peer_record"])
    assert "error" not in opened, opened
    assert opened["peer_id"] == opened["signer"] == health["peer_id"]
    assert opened["payload_type"] == "0301"
    assert opened["multiaddrs"] == [peer_record.transport_address(a) for a in health["multiaddrs"]]
    seq = int(opened["seq"])
    assert abs(seq - time.time_ns()) < 3600 * 10**9  # unix time in ns, as go-libp2p

    # WHOOSH (a real process, no libp2p) verified the same record and lists it as signed.
    def listed() -> dict[str, Any] | None:
        boot = mesh.get_json(f"{LAYOUT.whoosh_url}/api/v1/bootstrap-peers")
        return next((p for p in boot["bootstrap_peers"] if p["peer_id"] == health["peer_id"]), None)

    mesh.wait_for(lambda: listed() is not None, timeout=60, what="WHOOSH lists agent-01")
    entry = listed()
    assert entry is not None and entry["signed"] is True and entry["record_seq"] == seq
    assert entry["multiaddrs"] == health["multiaddrs"]
