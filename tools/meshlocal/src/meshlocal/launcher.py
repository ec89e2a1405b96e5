"""Start, watch and stop the mesh's processes. Used by ``make run`` and by the tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from meshcommon.swarm_key import write_swarm_key
from meshcommon.waiting import wait_until

# Started by path (see its docstring): makes a service die with the launcher, even a
# launcher killed with SIGKILL.
_DIE_WITH_PARENT = Path(__file__).with_name("die_with_parent.py")


@dataclass(frozen=True)
class MeshLayout:
    """Where everything listens. Every service gets its own loopback IP, so all of them
    keep their default ports (HTTP 8080, libp2p 9000) as they would in containers."""

    agents: int = 10
    agent_net: str = "127.0.1"  # agent k listens on 127.0.1.k
    whoosh_ip: str = "127.0.0.2"
    monitor_ip: str = "127.0.0.3"
    http_port: int = 8080
    p2p_port: int = 9000
    broadcast_interval_s: float = 10.0
    whoosh_poll_s: float = 2.0

    def agent_ip(self, index: int) -> str:
        return f"{self.agent_net}.{index}"

    def agent_url(self, index: int) -> str:
        return f"http://{self.agent_ip(index)}:{self.http_port}"

    @property
    def whoosh_url(self) -> str:
        return f"http://{self.whoosh_ip}:{self.http_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.monitor_ip}:{self.http_port}"


@dataclass
class ServiceProcess:
    name: str
    module: str
    env: dict[str, str]
    url: str
    log_path: Path
    stdout_path: Path | None = None
    # Run the process with this group ID (root only). Tests use it to tell processes apart
    # in firewall rules (iptables ``-m owner --gid-owner``): on loopback every dial leaves
    # from 127.0.0.1, so the source address does not say which process sent a packet.
    gid: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    # Linux: the kernel SIGKILLs the process when the launcher dies, however it dies (see
    # die_with_parent.py). Only when started from the main thread: the signal fires when
    # the thread that started the process exits.
    die_with_parent: bool = True
    # The interpreter, hence the checkout, whose services run (benchmarks compare two).
    python: str = sys.executable

    def command(self) -> list[str]:
        cmd = [self.python, "-m", self.module]
        if (
            self.die_with_parent
            and sys.platform == "linux"
            and threading.current_thread() is threading.main_thread()
        ):
            guard = [sys.executable, "-I", "-S", str(_DIE_WITH_PARENT), str(os.getpid())]
            cmd = guard + cmd
        return cmd

    def start(self) -> None:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with contextlib.ExitStack() as files:
            stderr = files.enter_context(self.log_path.open("ab"))
            stdout = (
                files.enter_context(self.stdout_path.open("ab"))
                if self.stdout_path
                else subprocess.DEVNULL
            )
            # Own session: Ctrl-C in the terminal reaches only the launcher, which then stops
            # every child in order instead of all of them racing. The flip side: nothing
            # else stops them, so the launcher must (LocalMesh.stop), and die_with_parent
            # covers a launcher that cannot.
            self.proc = subprocess.Popen(
                self.command(),
                env=env,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                group=self.gid,
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()

    def wait_or_kill(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@dataclass
class LocalMesh:
    layout: MeshLayout = field(default_factory=MeshLayout)
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chorus-mesh-")))
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: list[ServiceProcess] = field(default_factory=list)
    python: str = sys.executable
    # A libp2p private network: one fresh swarm.key per run (build), given to every agent
    # and the monitor, so the local mesh is closed like a deployed one.
    private_network: bool = True

    @property
    def swarm_key_path(self) -> Path:
        """The run's swarm.key (exists once ``build`` ran with ``private_network``)."""
        return self.run_dir / "swarm.key"

    def _pnet_env(self, prefix: str) -> dict[str, str]:
        if not self.private_network:
            return {}
        if not self.swarm_key_path.exists():
            # Fresh per run directory, owner-only; one already there is kept (a restart of
            # the same run, or a test that gave its own peers the key before the mesh).
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_swarm_key(self.swarm_key_path)
        return {f"{prefix}PNET_KEY_FILE": str(self.swarm_key_path)}

    # -- process set ----------------------------------------------------------------
    def agent_process(self, index: int, **env: str) -> ServiceProcess:
        lay = self.layout
        ip = lay.agent_ip(index)
        name = f"agent-{index:02d}"
        return ServiceProcess(
            python=self.python,
            name=name,
            module="chorus_agent",
            url=lay.agent_url(index),
            log_path=self.run_dir / f"{name}.log",
            env={
                "AGENT_NAME": name,
                "AGENT_HOST": ip,
                "AGENT_PORT": str(lay.http_port),
                "AGENT_P2P_HOST": ip,
                "AGENT_P2P_PORT": str(lay.p2p_port),
                "AGENT_ALLOW_LOOPBACK": "true",
                "AGENT_WHOOSH_URL": lay.whoosh_url,
                "AGENT_BROADCAST_INTERVAL_S": str(lay.broadcast_interval_s),
                "AGENT_BOOTSTRAP_REFRESH_S": "3",
                "AGENT_IDENTITY_PATH": str(self.run_dir / f"{name}.key"),
                **self._pnet_env("AGENT_"),
                **self.extra_env.get(name, {}),
                **env,
            },
        )

    def build(self) -> None:
        lay = self.layout
        self.run_dir.mkdir(parents=True, exist_ok=True)
        static = ",".join(lay.agent_url(i) for i in range(1, lay.agents + 1))
        self.processes = [
            ServiceProcess(
                python=self.python,
                name="whoosh",
                module="whoosh",
                url=lay.whoosh_url,
                log_path=self.run_dir / "whoosh.log",
                env={
                    "WHOOSH_HOST": lay.whoosh_ip,
                    "WHOOSH_PORT": str(lay.http_port),
                    "WHOOSH_DISCOVERY": "static",
                    "WHOOSH_STATIC_AGENTS": static,
                    "WHOOSH_ALLOW_LOOPBACK": "true",
                    "WHOOSH_POLL_INTERVAL_S": str(lay.whoosh_poll_s),
                    "WHOOSH_ADMIN_TOKEN": self.admin_token,
                    **self.extra_env.get("whoosh", {}),
                },
            ),
            ServiceProcess(
                python=self.python,
                name="hmmm-monitor",
                module="hmmm_monitor",
                url=lay.monitor_url,
                log_path=self.run_dir / "hmmm-monitor.log",
                stdout_path=self.run_dir / "messages.jsonl",
                env={
                    "MONITOR_HOST": lay.monitor_ip,
                    "MONITOR_PORT": str(lay.http_port),
                    "MONITOR_P2P_HOST": lay.monitor_ip,
                    "MONITOR_P2P_PORT": str(lay.p2p_port),
                    "MONITOR_WHOOSH_URL": lay.whoosh_url,
                    "MONITOR_ALLOW_LOOPBACK": "true",
                    "MONITOR_BOOTSTRAP_REFRESH_S": "2",
                    "MONITOR_HEARD_WINDOW_S": str(lay.broadcast_interval_s * 1.5),
                    "MONITOR_BOOTSTRAP_CACHE_PATH": str(self.run_dir / "bootstrap-cache.json"),
                    **self._pnet_env("MONITOR_"),
                    **self.extra_env.get("hmmm-monitor", {}),
                },
            ),
            *(self.agent_process(i) for i in range(1, lay.agents + 1)),
        ]

    def service(self, name: str) -> ServiceProcess:
        return next(p for p in self.processes if p.name == name)

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        if not self.processes:
            self.build()
        for proc in self.processes:
            proc.start()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM everything we started (by PID), then SIGKILL what is left."""
        for proc in self.processes:
            proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.processes:
            proc.wait_or_kill(max(0.1, deadline - time.monotonic()))

    def kill(self) -> None:
        """SIGKILL everything still running (by PID); ``stop`` then only has to reap."""
        for proc in self.processes:
            proc.kill()

    def __enter__(self) -> LocalMesh:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of every process's log: what to print when something failed."""
        out = []
        for proc in self.processes:
            if proc.log_path.exists():
                text = proc.log_path.read_text(errors="replace").splitlines()[-lines:]
                out.append(
                    f"--- {proc.name} (pid {proc.pid}, alive={proc.alive()})\n" + "\n".join(text)
                )
        return "\n".join(out)

    # -- observation ------------------------------------------------------------------
    def get_json(self, url: str, timeout: float = 2.0) -> Any:
        resp = httpx.get(url, timeout=timeout)
        resp.raise_for_status()
        return resp.json()

    def status(self) -> dict[str, Any]:
        """One reading of discovered / connected / heard; missing parts are None."""
        out: dict[str, Any] = {"whoosh": None, "coverage": None}
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            out["whoosh"] = self.get_json(f"{self.layout.whoosh_url}/api/v1/agents")["summary"]
        with contextlib.suppress(httpx.HTTPError, ValueError):
            out["coverage"] = self.get_json(f"{self.layout.monitor_url}/api/v1/coverage")
        out["dead"] = [p.name for p in self.processes if not p.alive()]
        return out

    def wait_for(
        self,
        condition: Callable[[], bool],
        timeout: float,
        interval: float = 0.5,
        what: str = "condition",
    ) -> float:
        """Poll ``condition`` until true (a service not answering yet counts as false);
        returns seconds waited, raises TimeoutError."""
        _, waited = wait_until(condition, within_s=timeout, interval=interval, what=what)
        return waited
