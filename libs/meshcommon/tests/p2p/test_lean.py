"""meshcommon.p2p.lean: what a mesh peer imports of py-libp2p, and what happens when a
left-out feature is used. Each check runs in a fresh interpreter (imports are per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("libp2p")

# PyCryptodome's Salsa20 is the private network's stream cipher (meshcommon.p2p.pnet, about
# 30 ms to import); its RSA and hashes come only with the key types a mesh peer never uses.
HEAVY = [
    "aioquic",
    "zeroconf",
    "miniupnpc",
    "requests",
    "Crypto.PublicKey",
    "Crypto.Hash",
    "dns.resolver",
    "fastecdsa",
]

PROBE = f"""
import json, sys
import meshcommon.p2p.node  # what the agent and the monitor import
from meshcommon.p2p import lean
result = {{"heavy": [m for m in {HEAVY!r} if m in sys.modules], "installed": lean.installed()}}
try:
    from libp2p.transport.quic.transport import QUICTransport
    QUICTransport()
except lean.LeanImportError as exc:
    result["quic"] = str(exc)
except TypeError:  # the real class, called without its arguments
    result["quic"] = "real"
print(json.dumps(result))
"""


def run_probe(**env: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_mesh_peer_does_not_import_quic_dht_mdns_or_upnp() -> None:
    result = run_probe()
    assert result["installed"] is True
    assert result["heavy"] == []
    # A left-out feature fails loudly, naming itself, never silently.
    assert "QUIC transport" in str(result["quic"])


def test_the_full_library_can_still_be_imported() -> None:
    result = run_probe(MESH_LIBP2P_FULL_IMPORT="1")
    assert result["installed"] is False
    assert "aioquic" in result["heavy"]  # type: ignore[operator]
    assert result["quic"] == "real"
