"""Independent libp2p implementations for the interop tests: js-libp2p 2.9 and go-libp2p
(the go-libp2p daemon, p2pd, tests/interop/go).

`npm ci` installs js-libp2p from tests/interop/js/package-lock.json on first use (a few
seconds); tests/interop/go/install_p2pd.py fetches p2pd (`make test-integration` runs it
first; the fixture again if need be). Without Node.js or p2pd the tests skip, unless
CHORUS_REQUIRE_INTEROP=1 (`make test-integration` sets it): then they fail, as a missing
test prerequisite must not pass silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from meshlocal import LocalMesh, MeshLayout

if TYPE_CHECKING:  # imported when used: it imports libp2p, which meshcommon.p2p must come before
    from .go.daemon import GoPeer

JS = Path(__file__).with_name("js")
REQUIRED = os.environ.get("CHORUS_REQUIRE_INTEROP") == "1"


def _skip_or_fail(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (CHORUS_REQUIRE_INTEROP=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def js_libp2p() -> Path:
    """The js peer's directory, its node_modules installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        _skip_or_fail("Node.js and npm are needed for the js-libp2p interop tests")
    installed = JS / "node_modules" / ".package-lock.json"
    lock = JS / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        proc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"npm ci failed in {JS}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return JS


@pytest.fixture(scope="session")
def p2pd() -> Path:
    """The go-libp2p daemon binary, verified (installed on first use)."""
    from .go.install_p2pd import InstallError, install

    try:
        return install()
    except (InstallError, OSError, subprocess.SubprocessError) as exc:
        _skip_or_fail(f"the go-libp2p daemon (p2pd) is needed for the go interop tests: {exc}")
        raise  # not reached: _skip_or_fail raises


class JsPeer:
    """The js peer process (peer.mjs), driven by JSON lines; killed by PID on close."""

    def __init__(
        self, js_dir: Path, host: str, port: int, pnet_key_file: Path | None = None
    ) -> None:
        """``pnet_key_file``: a swarm.key, so that the js peer joins a closed mesh."""
        env = {k: v for k, v in os.environ.items() if k != "PNET_KEY_FILE"}
        if pnet_key_file is not None:
            env["PNET_KEY_FILE"] = str(pnet_key_file)
        self.proc = subprocess.Popen(
            ["node", "--import", "./polyfill.mjs", "peer.mjs", host, str(port)],
            cwd=js_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        hello = self.read(60)
        self.addr: str = hello["addr"]
        self.peer_id: str = hello["peer_id"]

    def read(self, within_s: float = 60) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], within_s)
        if not ready:
            raise TimeoutError(f"js peer silent for {within_s:.0f}s")
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise RuntimeError(f"js peer exited ({self.proc.poll()}): {err[-2000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, command: str, within_s: float = 60) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((command + "\n").encode())
        self.proc.stdin.flush()
        return self.read(within_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def js_peer(js_libp2p: Path) -> Iterator[JsPeer]:
    peer = JsPeer(js_libp2p, "127.0.0.1", free_port())
    try:
        yield peer
    finally:
        peer.close()


@contextlib.contextmanager
def running_go_peer(
    request: pytest.FixtureRequest, p2pd: Path, host: str = "127.0.0.1", *, dht: bool = False
) -> Iterator[GoPeer]:
    """A go-libp2p peer (p2pd) on ``host`` (``dht``: with go-libp2p-kad-dht), killed
    afterwards; its log is printed when the block raised or a test has failed, as it is
    the only account of what go-libp2p saw."""
    from .go.daemon import GoPeer

    peer = GoPeer(p2pd, host=host, dht=dht)
    raised = False
    try:
        yield peer
    except BaseException:
        raised = True
        raise
    finally:
        if raised or request.session.testsfailed:
            print(f"p2pd log:\n{peer.log()}")
        peer.close()


@pytest.fixture
def go_peer(request: pytest.FixtureRequest, p2pd: Path) -> Iterator[GoPeer]:
    """A go-libp2p peer (p2pd) on 127.0.0.1, or on the host given as the fixture's
    parameter (``@pytest.mark.parametrize("go_peer", [HOST], indirect=True)``)."""
    with running_go_peer(request, p2pd, getattr(request, "param", "127.0.0.1")) as peer:
        yield peer


def monitor_findings(mesh: LocalMesh) -> dict[str, dict[str, Any]]:
    """The monitor's diagnosis of ``mesh``: each finding by its ID."""
    doc = mesh.get_json(f"{mesh.layout.monitor_url}/api/v1/diagnosis")
    return {f["id"]: f for f in doc["findings"]}


def doctor(*args: str) -> tuple[int, str, float]:
    """The doctor as a user runs it (as tests/integration/doctor_cli.py does, but only its
    standard output, which --json makes a document): exit status, output, seconds."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "hmmm_monitor", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, time.monotonic() - started


@contextlib.contextmanager
def covered_mesh(
    request: pytest.FixtureRequest,
    run_dir: Path,
    layout: MeshLayout,
    extra_env: dict[str, dict[str, str]] | None = None,
    *,
    private_network: bool = True,
) -> Iterator[LocalMesh]:
    """A local mesh of ``layout`` (closed with the run's swarm.key unless
    ``private_network`` is False), started and waited on until the monitor expects, is
    connected to and hears every agent; stopped afterwards, its logs shown when a test
    failed."""
    n = layout.agents
    mesh = LocalMesh(
        layout, run_dir=run_dir, extra_env=extra_env or {}, private_network=private_network
    )

    def covered() -> bool:
        cov = mesh.get_json(f"{layout.monitor_url}/api/v1/coverage")
        return (cov["expected"], cov["connected"], cov["heard"]) == (n, n, n)

    try:
        mesh.start()
        mesh.wait_for(covered, timeout=120, what=f"coverage {n}/{n}")
        yield mesh
    finally:
        mesh.stop()
        if request.session.testsfailed:
            print(f"run dir: {mesh.run_dir}\n{mesh.log_tail()}")
