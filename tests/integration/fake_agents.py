"""Misbehaving agents for the bad-input tests: real HTTP servers on loopback, each
answering ``/api/health`` wrongly in its own way."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meshcommon.peer_record import peer_id_of_private_key, seal_peer_record, transport_address

# A real peer ID that belongs to none of the agents.
FOREIGN_PEER_ID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
# A fake agent's identity: a real Ed25519 key (fixed seed), so that a fake standing for a
# real agent can sign its peer record (``signed_health``).
FAKE_KEY = Ed25519PrivateKey.from_private_bytes(b"chorus-fake-agent-identity-seed!")
FAKE_PEER_ID = peer_id_of_private_key(FAKE_KEY)


def signed_health(
    key: Ed25519PrivateKey, multiaddrs: list[str], name: str, **extra: object
) -> bytes:
    """A health answer with a valid signed peer record of ``multiaddrs`` (what a real
    agent with ``key`` serves)."""
    peer_id = peer_id_of_private_key(key)
    record = seal_peer_record(key, [transport_address(a) for a in multiaddrs], time.time_ns())
    doc = {
        "peer_id": peer_id,
        "multiaddrs": multiaddrs,
        "name": name,
        "gossipsub_topics": [],
        "peer_record": base64.b64encode(record).decode(),
        **extra,
    }
    return json.dumps(doc).encode()


def _health(multiaddrs: list[str]) -> bytes:
    return json.dumps(
        {
            "peer_id": FAKE_PEER_ID,
            "multiaddrs": multiaddrs,
            "connected_peers": 0,
            "gossipsub_topics": [],
        }
    ).encode()


BEHAVIOURS: dict[str, tuple[int, bytes]] = {
    "malformed_json": (200, b'{"peer_id": "12D3KooW'),
    "http_500": (500, b"internal error"),
    "bad_multiaddrs": (
        200,
        _health(
            [
                "/ip4/999.1.1.1/tcp/9000",  # invalid
                f"/ip4/127.0.79.9/tcp/9000/p2p/{FOREIGN_PEER_ID}",  # names another peer
            ]
        ),
    ),
    "hang": (200, b""),
}


GetHandler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def serve_get_handlers(ip_prefix: str, handlers: dict[str, GetHandler]) -> Iterator[dict[str, str]]:
    """One HTTP server per handler on <ip_prefix>.1, .2, ... port 8080, answering every GET
    with it; yields name -> base URL. The servers are shut down on exit."""
    servers: list[ThreadingHTTPServer] = []
    urls: dict[str, str] = {}
    try:
        for i, (name, handle) in enumerate(handlers.items(), start=1):

            class Handler(BaseHTTPRequestHandler):
                act = staticmethod(handle)

                def do_GET(self) -> None:
                    self.act(self)

                def log_message(self, *args: object) -> None:
                    pass

            server = ThreadingHTTPServer((f"{ip_prefix}.{i}", 8080), Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            urls[name] = f"http://{ip_prefix}.{i}:8080"
        yield urls
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@contextmanager
def fake_agents(ip_prefix: str) -> Iterator[dict[str, str]]:
    """Start one server per behaviour on <ip_prefix>.1, .2, ...; yields name -> URL."""
    stop = threading.Event()

    def answer(name: str, status: int, body: bytes) -> GetHandler:
        def handle(handler: BaseHTTPRequestHandler) -> None:
            if name == "hang":
                stop.wait(30)  # longer than WHOOSH's timeout; ends at teardown
                return
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

        return handle

    handlers = {name: answer(name, *reply) for name, reply in BEHAVIOURS.items()}
    with serve_get_handlers(ip_prefix, handlers) as urls:
        try:
            yield urls
        finally:
            stop.set()
