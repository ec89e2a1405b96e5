"""Misbehaving agents for the bad-input tests: real HTTP servers on loopback, each
answering ``/api/health`` wrongly in its own way."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A real peer ID that belongs to none of the agents.
FOREIGN_PEER_ID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
FAKE_PEER_ID = "12D3KooWMYndRNDDW5C4RLTbQKPn19Xg2vjA9Wtq3RCDdcCr98HF"


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
