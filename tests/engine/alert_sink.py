"""A webhook receiver for Alertmanager in the engine tests (docker-compose.test.yml, service
alert-sink): every POST body is appended, as one JSON line with its arrival time, to a file
in the container (a stopped and started sink keeps what it received); GET /notifications
returns them all. Standard library only: it runs with the image's python3."""

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = "/tmp/notifications.jsonl"


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        record = {"received_at": time.time(), "path": self.path, "body": json.loads(body)}
        with open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:
        try:
            with open(LOG) as f:
                records = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            records = []
        data = json.dumps(records).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 9095), Sink).serve_forever()
