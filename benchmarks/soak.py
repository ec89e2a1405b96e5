"""The monitor's memory under the soak's load (issue 20's row): `make soak`'s shape (10
agents, one restarted every minute, the hostile peers, the garbage sender's ~50 KB
availability messages every second), shortened to ``SOAK_S``.

Measured: the monitor's RSS once every agent is heard and before the garbage starts
("idle"), its peak over the soak, and its kept-message cap; the row is the peak over idle,
against the cap + 20 MiB the issue allows. The harness is the soak test's own
(``tests/integration/hostile.py``); only the services come from ``--python``'s checkout.

python -m benchmarks --only soak --runs 1
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.hostile import GarbageSender, mesh_node_config, mesh_with_hostile_peers
from tests.integration.soak import CAP_ALLOWANCE_MIB, Churn, read_sample

from benchmarks.procs import Interpreter
from meshcommon.waiting import wait_until
from meshlocal import LocalMesh, MeshLayout

AGENTS = 10
SOAK_S = 240.0  # long enough for the garbage to fill the 16 MiB cap at ~50 KB/s
CHURN_S = 60.0
SAMPLE_S = 5.0
HOSTILE_NET = "127.0.158"
GARBAGE_IP = f"{HOSTILE_NET}.20"


@dataclass
class SoakRun:
    idle_rss_mib: float = float("nan")
    peak_rss_mib: float = float("nan")
    cap_mib: float = float("nan")
    kept_mib: float = float("nan")  # at the end: whether the cap filled

    @property
    def over_idle_mib(self) -> float:
        return self.peak_rss_mib - self.idle_rss_mib

    @property
    def allowed_mib(self) -> float:
        return self.cap_mib + CAP_ALLOWANCE_MIB


def run_once(interp: Interpreter, soak_s: float = SOAK_S) -> SoakRun:
    result = SoakRun()
    layout = MeshLayout(
        agents=AGENTS,
        agent_net="127.0.156",
        whoosh_ip="127.0.157.2",
        monitor_ip="127.0.157.3",
        broadcast_interval_s=30.0,
    )
    run_dir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    try:
        with mesh_with_hostile_peers(layout, run_dir, HOSTILE_NET, interp.python) as running:
            mesh = running[0]
            cov_url = f"{layout.monitor_url}/api/v1/coverage"
            wait_until(
                lambda: mesh.get_json(cov_url),
                lambda c: c["heard"] == AGENTS,
                within_s=180,
                interval=0.5,
                what=f"{AGENTS}/{AGENTS} heard",
            )
            result.idle_rss_mib = read_sample(layout.monitor_url, "hmmm-monitor")["rss_mib"]
            health = mesh.get_json(f"{layout.monitor_url}/api/health")
            agent = mesh.get_json(f"{layout.agent_url(AGENTS)}/api/health")
            garbage = GarbageSender(GARBAGE_IP, config=mesh_node_config(mesh, GARBAGE_IP))
            garbage.start(
                {health["peer_id"]: health["multiaddrs"], agent["peer_id"]: agent["multiaddrs"]}
            )
            try:
                _soak(mesh, layout, result, soak_s)
            finally:
                garbage.stop()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _soak(mesh: LocalMesh, layout: MeshLayout, result: SoakRun, soak_s: float) -> None:
    peaks, caps = [], []
    churn = Churn(mesh, AGENTS, CHURN_S)
    for _ in churn.ticks(until=time.monotonic() + soak_s, tick_s=SAMPLE_S):
        try:
            sample = read_sample(layout.monitor_url, "hmmm-monitor")
        except Exception as exc:  # a missed sample is printed, the next one tries again
            print(f"    soak: monitor unreadable ({type(exc).__name__})", flush=True)
        else:
            peaks.append(sample["rss_mib"])
            if "cap_mib" in sample:
                caps.append(sample["cap_mib"])
                result.kept_mib = sample.get("kept_mib", float("nan"))
    if peaks:
        result.peak_rss_mib = max(peaks)
    if caps:
        result.cap_mib = max(caps)
    print(
        f"    soak: monitor idle {result.idle_rss_mib:.1f} MiB, peak {result.peak_rss_mib:.1f}, "
        f"kept {result.kept_mib:.1f} of cap {result.cap_mib:.1f} MiB, {churn.restarts} restarts",
        flush=True,
    )
