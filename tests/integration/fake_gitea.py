"""A Gitea stand-in for process tests: the label endpoints WHOOSH's label sync uses, on a
loopback address, one page per listing, labels kept in memory."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_LABELS = re.compile(r"^/api/v1/repos/([^/]+)/([^/]+)/labels(?:/(\d+))?$")


@contextmanager
def fake_gitea(host: str, port: int = 3000) -> Iterator[str]:
    """Serve ``GET/POST /api/v1/repos/{owner}/{repo}/labels`` and ``PATCH .../labels/{id}``
    for any repository; yields the base URL."""
    labels: dict[str, list[dict[str, Any]]] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if isinstance(body, list):
                self.send_header("X-Total-Count", str(len(body)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> tuple[str, int | None] | None:
            match = _LABELS.match(self.path.split("?")[0])
            if match is None:
                self._answer(404, {"message": "not found"})
                return None
            repo = f"{match[1]}/{match[2]}"
            return repo, int(match[3]) if match[3] else None

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return dict(json.loads(self.rfile.read(length) or b"{}"))

        def do_GET(self) -> None:
            if (route := self._route()) is not None:
                with lock:
                    self._answer(200, list(labels.get(route[0], [])))

        def do_POST(self) -> None:
            if (route := self._route()) is not None:
                body = self._body()
                with lock:
                    repo = labels.setdefault(route[0], [])
                    label = {
                        "id": len(repo) + 1,
                        "name": body["name"],
                        "color": str(body.get("color", "")).lstrip("#"),
                        "description": body.get("description", ""),
                    }
                    repo.append(label)
                self._answer(201, label)

        def do_PATCH(self) -> None:
            if (route := self._route()) is not None:
                body = self._body()
                with lock:
                    label = next(x for x in labels.get(route[0], []) if x["id"] == route[1])
                    label.update({k: v for k, v in body.items() if k in ("color", "description")})
                    label["color"] = str(label["color"]).lstrip("#")
                self._answer(200, label)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
