"""Real Docker Engine tests: compose and a single-node Swarm (marker ``engine``).

`make test-engine` starts an engine when none answers (scripts/engine/ensure-engine.sh), builds
the images, and sets CHORUS_REQUIRE_ENGINE=1: then a missing engine or image is a failure.
Run by hand without it, the tests skip with the reason.

Everything is reached over ports published on this machine (127.0.0.1) or addresses of
containers on networks these tests create. Every wait polls with a deadline; every fixture
removes what it created, also on failure.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from meshcommon import waiting

REPO = Path(__file__).resolve().parents[2]
IMAGE_TAG = os.environ.get("IMAGE_TAG", "test")
IMAGES = {
    "AGENT_IMAGE": f"chorus-agent:{IMAGE_TAG}",
    "WHOOSH_IMAGE": f"whoosh:{IMAGE_TAG}",
    "MONITOR_IMAGE": f"hmmm-monitor:{IMAGE_TAG}",
    "PROMETHEUS_IMAGE": f"chorus-prometheus:{IMAGE_TAG}",
    "ALERTMANAGER_IMAGE": f"chorus-alertmanager:{IMAGE_TAG}",
}
REQUIRED = os.environ.get("CHORUS_REQUIRE_ENGINE") == "1"

T = TypeVar("T")


def run(
    *args: str, check: bool = True, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, raise with its output (not just the exit code)."""
    proc = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and proc.returncode != 0:
        out = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        raise AssertionError(f"{' '.join(args)} -> exit {proc.returncode}\n{out}")
    return proc


def lines(*args: str) -> list[str]:
    return [ln for ln in run(*args).stdout.splitlines() if ln.strip()]


# Probes here also run docker commands: a failing one (AssertionError from run()) or one
# that hangs is "not yet" too.
ENGINE_TRANSIENT = (*waiting.TRANSIENT, AssertionError, subprocess.TimeoutExpired)


def wait_until(
    what: str,
    probe: Callable[[], T],
    ok: Callable[[T], bool],
    timeout: float,
    interval: float = 2.0,
) -> T:
    """Poll ``probe`` until ``ok(value)`` (meshcommon.waiting, engine flavour); fail after
    ``timeout`` s showing the last value."""
    value, _ = waiting.wait_until(
        probe, ok, within_s=timeout, interval=interval, what=what, transient=ENGINE_TRANSIENT
    )
    return value


def get_json(url: str) -> Any:
    resp = httpx.get(url, timeout=10)
    resp.raise_for_status()
    return resp.json()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


@dataclass
class Timings:
    """Durations of the steps, printed at the end of the session (the report reads them)."""

    steps: list[tuple[str, float]] = field(default_factory=list)
    _t: float = field(default_factory=time.monotonic)

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.steps.append((name, now - self._t))
        self._t = now


_ALL_TIMINGS: list[tuple[str, Timings]] = []


@pytest.fixture
def timings(request: pytest.FixtureRequest) -> Timings:
    t = Timings()
    _ALL_TIMINGS.append((request.node.name, t))
    return t


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _ALL_TIMINGS:
        return
    terminalreporter.section("engine test timings")
    for name, t in _ALL_TIMINGS:
        for step, secs in t.steps:
            terminalreporter.write_line(f"{name}: {step}: {secs:.1f}s")


def skip_or_fail(reason: str) -> None:
    if REQUIRED:
        pytest.fail(
            f"{reason} (CHORUS_REQUIRE_ENGINE=1: `make test-engine` should have provided it)"
        )
    pytest.skip(f"{reason}; run `make test-engine` (starts an engine, builds the images)")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def teardown_on_sigterm() -> Iterator[None]:
    """A run stopped with SIGTERM (`timeout`, CI cancelling a job) still removes what it
    created: SIGTERM becomes KeyboardInterrupt, after which pytest runs every fixture's
    teardown (a multi-node Swarm left running breaks the next run that uses its prefix)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The engine answers and the images exist; returns the env for compose/stack: the
    images, and the private-network key file compose mounts (a fresh swarm.key of this
    session, ``CHORUS_PNET_KEY_FILE``; stacks get a secret of their own)."""
    try:
        info = run("docker", "info", "--format", "{{json .}}", check=False, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        skip_or_fail(f"no Docker Engine: {exc}")
    if info.returncode != 0:
        skip_or_fail(f"no Docker Engine answers `docker info`: {info.stderr.strip()[:300]}")
    for image in IMAGES.values():
        if run("docker", "image", "inspect", image, check=False).returncode != 0:
            skip_or_fail(f"image {image} missing (scripts/engine/build-images.sh)")
    key_file = tmp_path_factory.mktemp("pnet") / "swarm.key"
    key_file.write_text(swarm_key_text())
    # Compose bind-mounts a file secret as it is: the images' unprivileged users must read it.
    key_file.chmod(0o644)
    return {**IMAGES, "CHORUS_PNET_KEY_FILE": str(key_file)}


def create_secret(name: str, text: str, env: dict[str, str] | None = None) -> str:
    """``docker secret create name -`` with ``text``; returns ``text``."""
    proc = subprocess.run(
        ["docker", "secret", "create", name, "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"docker secret create {name} -> {proc.stderr.strip()}")
    return text


def create_identity_secret(name: str, env: dict[str, str] | None = None) -> None:
    """The Swarm secret stack.yml's agents derive their identities from (random, 32 bytes
    base64: what the README's `openssl rand -base64 32` makes)."""
    create_secret(name, base64.b64encode(os.urandom(32)).decode(), env)


def swarm_key_text() -> str:
    """A fresh private-network key in the standard swarm.key format (what the README's
    `printf ... openssl rand -hex 32` makes)."""
    return f"/key/swarm/psk/1.0.0/\n/base16/\n{os.urandom(32).hex()}\n"


def create_pnet_secret(name: str, env: dict[str, str] | None = None) -> str:
    """The Swarm secret stack.yml's libp2p hosts read their private-network key from
    (``CHORUS_PNET_SECRET``), a fresh key; returns the key file's text, for a host outside
    the stack."""
    return create_secret(name, swarm_key_text(), env)


def compose_cmd() -> list[str]:
    if run("docker", "compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    if run("sh", "-c", "command -v docker-compose", check=False).returncode == 0:
        return ["docker-compose"]
    skip_or_fail("neither `docker compose` nor `docker-compose` (scripts/engine/ensure-engine.sh)")
    raise AssertionError("unreachable")


def json_lines(text: str) -> list[dict[str, Any]]:
    """`--format json` prints one object per line (compose v2 >= 2.21) or one array."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


@pytest.fixture
def compose_project(engine: dict[str, str]) -> Iterator[tuple[list[str], str]]:
    """A compose project of docker-compose.test.yml, always taken down afterwards."""
    cmd = [*compose_cmd(), "-f", str(REPO / "docker-compose.test.yml")]
    project = f"chorus-e2e-{os.getpid()}"
    base = [*cmd, "-p", project]
    try:
        yield base, project
    finally:
        logs = run(*base, "logs", "--no-color", "--tail", "20", check=False, env=engine)
        if logs.stdout:
            print(f"--- compose logs (tail)\n{logs.stdout[-6000:]}")
        run(
            *base,
            "down",
            "--volumes",
            "--remove-orphans",
            "--timeout",
            "5",
            check=False,
            env=engine,
            timeout=180,
        )


def _swarm_state() -> str:
    return run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


@pytest.fixture(scope="module")
def swarm(engine: dict[str, str]) -> Iterator[None]:
    """A Swarm this engine manages; initialised (and left afterwards) only if there was none."""
    state = _swarm_state()
    initialised = False
    had_gwbridge = bool(
        lines("docker", "network", "ls", "-q", "--filter", "name=^docker_gwbridge$")
    )
    if state == "inactive":
        run("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
        initialised = True
    elif state != "active":
        pytest.fail(f"Swarm state {state!r}: neither inactive nor active")
    if run("docker", "info", "--format", "{{.Swarm.ControlAvailable}}").stdout.strip() != "true":
        pytest.fail("this engine is in a Swarm but not a manager: cannot deploy a stack here")
    try:
        yield
    finally:
        if initialised:
            run("docker", "swarm", "leave", "--force", check=False)
            # `swarm init` created docker_gwbridge; leaving does not remove it.
            if not had_gwbridge:
                run("docker", "network", "rm", "docker_gwbridge", check=False)


def stack_leftovers(stack: str) -> dict[str, list[str]]:
    """What of a stack is still there: services, containers, networks."""
    label = f"label=com.docker.stack.namespace={stack}"
    return {
        "services": lines("docker", "service", "ls", "-q", "--filter", label),
        "containers": lines("docker", "ps", "-aq", "--filter", label),
        "networks": lines("docker", "network", "ls", "-q", "--filter", label),
    }


def stack_volumes(stack: str) -> list[str]:
    return lines(
        "docker", "volume", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={stack}"
    )


def remove_stack(stack: str, timeout: float = 120) -> dict[str, list[str]]:
    """`docker stack rm`, wait until nothing of it is left, remove its volumes; returns
    what is left (nothing, or the test fails on it)."""
    run("docker", "stack", "rm", stack, check=False)
    left = wait_until(
        f"stack {stack} to be gone",
        lambda: stack_leftovers(stack),
        lambda left: not any(left.values()),
        timeout=timeout,
        interval=1,
    )
    # Volumes outlive a stack on purpose (Prometheus' data); the test's are removed here.
    for volume in stack_volumes(stack):
        run("docker", "volume", "rm", volume, check=False)
    return {**left, "volumes": stack_volumes(stack)}


@contextlib.contextmanager
def stack_environment(
    stack: str, engine_env: dict[str, str], settings: dict[str, str]
) -> Iterator[dict[str, str]]:
    """What `docker stack deploy -c stack.yml <stack>` needs: the images, ``settings``, WHOOSH
    and the monitor published on free ports, and an identity secret of the stack's own
    (``<stack>_identity``, created here), and a private-network key (``<stack>_pnet``; the
    key's text is ``env["CHORUS_PNET_KEY"]``, for a host outside the stack). On the way out
    a stack the test left behind is shown (WHOOSH's and the monitor's last log lines, the
    agent tasks) and removed, and both secrets are removed."""
    secret, pnet_secret = f"{stack}_identity", f"{stack}_pnet"
    env = {
        **engine_env,
        **settings,
        "WHOOSH_PUBLISHED_PORT": str(free_port()),
        "MONITOR_PUBLISHED_PORT": str(free_port()),
        "CHORUS_IDENTITY_SECRET": secret,
        "CHORUS_PNET_SECRET": pnet_secret,
    }
    create_identity_secret(secret)
    env["CHORUS_PNET_KEY"] = create_pnet_secret(pnet_secret)
    try:
        yield env
    finally:
        if any(stack_leftovers(stack).values()):
            for service in ("whoosh", "hmmm-monitor"):
                logs = run(
                    "docker", "service", "logs", "--tail", "15", f"{stack}_{service}", check=False
                )  # fmt: skip
                print(f"--- {service} logs (tail)\n{(logs.stdout + logs.stderr)[-4000:]}")
            ps = run("docker", "service", "ps", "--no-trunc", f"{stack}_chorus", check=False)
            print(f"--- agent tasks\n{ps.stdout[-4000:]}")
            try:
                remove_stack(stack)
            except AssertionError as exc:
                print(f"cleanup: {exc}")
        run("docker", "secret", "rm", secret, pnet_secret, check=False)
