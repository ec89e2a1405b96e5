"""Driving a publisher probe process from a benchmark."""

from __future__ import annotations

import json
import select
import subprocess
import time
from typing import Any


class PublisherProbe:
    """``probes.py publisher`` behind a small synchronous API (JSON lines over pipes)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        hello = self._read(60)
        self.peer_id: str = hello["peer_id"]
        self.addr: str = hello["addr"]

    def _read(self, within_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], within_s)
        if not ready:
            raise TimeoutError(f"publisher probe silent for {within_s:.0f}s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"publisher probe exited ({self.proc.poll()})")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def ask(self, within_s: float = 120, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        return self._read(within_s)

    def start_publishing(self, rate: float, seconds: float, tag: str) -> float:
        """Send the command and return at once; ``finish()`` collects the answer."""
        assert self.proc.stdin is not None
        cmd = {"cmd": "publish", "rate": rate, "seconds": seconds, "tag": tag}
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        return time.monotonic()

    def finish(self, within_s: float = 120) -> dict[str, Any]:
        return self._read(within_s)
