"""``python -m whoosh`` as a real process on loopback, polling two real HTTP agents."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from whoosh_testkit import PEER_A, health_body

from meshcommon.waiting import wait_until

pytestmark = pytest.mark.integration


def _serve(status: int, body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def agents() -> Iterator[tuple[str, str]]:
    good = _serve(200, json.dumps(health_body(PEER_A, "127.0.0.1", name="alpha")).encode())
    bad = _serve(500, b'{"error": "boom"}')
    try:
        yield (f"http://127.0.0.1:{good.server_port}", f"http://127.0.0.1:{bad.server_port}")
    finally:
        for server in (good, bad):
            server.shutdown()
            server.server_close()


@pytest.fixture
def whoosh(agents: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHOOSH_")}
    env.update(
        WHOOSH_HOST="127.0.0.1",
        WHOOSH_PORT=str(port),
        WHOOSH_DISCOVERY="static",
        WHOOSH_STATIC_AGENTS=",".join(agents),
        WHOOSH_ALLOW_LOOPBACK="true",
        WHOOSH_POLL_INTERVAL_S="1",
        WHOOSH_HEALTH_ATTEMPTS="2",
        WHOOSH_BACKOFF_INITIAL_S="0.05",
        WHOOSH_BACKOFF_MAX_S="0.1",
        WHOOSH_ADMIN_TOKEN="process-test-token",
        NO_PROXY="*",
    )
    log_path = tmp_path / "whoosh.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "whoosh"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        output = log_path.read_text(errors="replace")
        print(output[-4000:])  # shown by pytest only when the test failed
        assert "process-test-token" not in output


def test_whoosh_process_serves_bootstrap_list(whoosh: str, agents: tuple[str, str]) -> None:
    good_url, bad_url = agents
    with httpx.Client(base_url=whoosh, trust_env=False, timeout=5) as api:
        # generous: a busy 2-core CI box
        view, _ = wait_until(
            lambda: api.get("/api/v1/agents").json(),
            lambda v: v["summary"]["healthy"] == 1 and v["summary"]["unreachable"] == 1,
            within_s=60,
            interval=0.1,
            what="whoosh to see one healthy and one unreachable agent",
        )
        boot = api.get("/api/v1/bootstrap-peers").json()
        health = api.get("/api/health")

    assert view["summary"] == {
        "expected": 2,
        "discovered": 2,
        "healthy": 1,
        "unreachable": 1,
        "missing": 1,
        "left": 0,
    }
    states = {a["url"]: (a["state"], a["reason"]) for a in view["agents"]}
    assert states == {good_url: ("healthy", None), bad_url: ("unreachable", "http_500")}
    assert boot["count"] == 1
    [peer] = boot["bootstrap_peers"]
    assert (peer["peer_id"], peer["name"], peer["priority"]) == (PEER_A, "alpha", 1)
    assert peer["multiaddr"] == f"/ip4/127.0.0.1/tcp/9000/p2p/{PEER_A}"
    # The image's HEALTHCHECK needs a 200; the body names the source and the same picture.
    assert health.status_code == 200
    assert health.json()["discovery_source"] == "static"
    assert health.json()["summary"] == view["summary"]
