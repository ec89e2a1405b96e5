"""The soak: 10 agents with churn (one restarted every minute), WHOOSH, the monitor, and
the hostile peers (many addresses, a slow agent, an impostor, a black hole, a garbage
sender), run for CHORUS_SOAK_S seconds (`make soak`: 30 minutes). Every
CHORUS_SOAK_SAMPLE_S it prints per service: RSS, open file descriptors, asyncio and trio
tasks. It fails when one of them grows without bound, when the monitor's RSS exceeds its
idle RSS + its message cap + 20 MiB, when a process dies, or when the monitor's bootstrap
list gets old. The monitor's RSS trend counts only once its cap is full (how long that
takes depends on the traffic), so the verdict does not depend on the length.

The integration tier runs a short one (under a minute of soaking: 4 agents, one restarted
every 15 s) so that the churn, the hostile peers and the measuring stay exercised in CI
and a leak fast enough to show within a minute fails there; flat memory over time is
the 30-minute run's verdict."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from meshlocal import LocalMesh, MeshLayout

from .hostile import GarbageSender, HostilePeers, mesh_node_config, mesh_with_hostile_peers
from .soak import Churn, SoakRecorder, read_sample

pytestmark = pytest.mark.integration

SOAK_S = float(os.environ.get("CHORUS_SOAK_S", "30"))
SHORT = SOAK_S < 600
SAMPLE_S = float(os.environ.get("CHORUS_SOAK_SAMPLE_S", "3" if SHORT else "30"))
WARMUP_S = float(os.environ.get("CHORUS_SOAK_WARMUP_S", "10" if SHORT else "120"))
CHURN_S = 15.0 if SHORT else 60.0
AGENTS = 4 if SHORT else 10
REFRESH_S = 2.0  # LocalMesh's MONITOR_BOOTSTRAP_REFRESH_S
STEADY = AGENTS  # the last agent is never restarted: its figures are comparable over the run


@pytest.fixture(scope="module")
def soak_mesh(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalMesh, HostilePeers]]:
    layout = MeshLayout(
        agents=AGENTS,
        agent_net="127.0.146",
        whoosh_ip="127.0.147.2",
        monitor_ip="127.0.147.3",
        broadcast_interval_s=5.0,
    )
    with mesh_with_hostile_peers(layout, tmp_path_factory.mktemp("soak"), "127.0.148") as running:
        yield running[0], running[1]


def test_nothing_grows_without_bound_under_churn_and_hostile_peers(soak_mesh) -> None:
    mesh, _ = soak_mesh
    lay = mesh.layout
    cov_url = f"{lay.monitor_url}/api/v1/coverage"
    mesh.wait_for(
        lambda: mesh.get_json(cov_url)["heard"] == AGENTS, timeout=180, what=f"{AGENTS} heard"
    )
    # The monitor's RSS before the garbage: what its cap is added to (SoakRecorder.bounds).
    idle_rss = {"hmmm-monitor": read_sample(lay.monitor_url, "hmmm-monitor")["rss_mib"]}
    health = mesh.get_json(f"{lay.monitor_url}/api/health")
    agent = mesh.get_json(f"{lay.agent_url(STEADY)}/api/health")
    garbage = GarbageSender(
        "127.0.148.20", period_s=1.0, config=mesh_node_config(mesh, "127.0.148.20")
    )
    garbage.start({health["peer_id"]: health["multiaddrs"], agent["peer_id"]: agent["multiaddrs"]})
    recorder = SoakRecorder(
        {
            "whoosh": lay.whoosh_url,
            "hmmm-monitor": lay.monitor_url,
            f"agent-{STEADY:02d}": lay.agent_url(STEADY),
        }
    )
    ages: list[float] = []
    churn = Churn(mesh, STEADY, CHURN_S)
    print(f"\nsoak: {SOAK_S:.0f} s after {WARMUP_S:.0f} s warm-up, sampled every {SAMPLE_S:.0f} s")
    try:
        next_sample = time.monotonic() + WARMUP_S
        recorder.started = next_sample
        end = next_sample + SOAK_S
        for now in churn.ticks(until=end + 0.5, tick_s=0.5):
            try:
                age = mesh.get_json(f"{lay.monitor_url}/api/health")["bootstrap"]["age_s"]
            except Exception:
                age = None
            if age is not None:
                ages.append(age)
            if now >= next_sample:
                try:
                    cov = mesh.get_json(cov_url, timeout=5)
                    heard = f"heard {cov['heard']}/{cov['expected']}"
                except Exception as exc:  # reported in the row; the next sample tries again
                    heard = f"coverage unreadable ({type(exc).__name__})"
                recorder.sample(
                    f"{heard}, bootstrap age {age} s, {churn.restarts} restarts, "
                    f"{garbage.sent} garbage sent"
                )
                next_sample += SAMPLE_S
    finally:
        garbage.stop()

    print()
    verdicts = recorder.verdicts()
    for v in verdicts:
        print(v.line())
    bounds = recorder.bounds(idle_rss)
    for b in bounds:
        print(b.line())
    assert [p.name for p in mesh.processes if not p.alive()] == []
    print(f"monitor bootstrap age: max {max(ages):.1f} s over {len(ages)} readings")
    assert max(ages) <= 3 * REFRESH_S
    assert churn.restarts >= SOAK_S // CHURN_S
    growing = [v.line() for v in verdicts if v.grows]
    assert growing == [], "\n".join(growing)
    assert bounds, "the monitor's capped store was never read"
    over = [b.line() for b in bounds if b.exceeded]
    assert over == [], "\n".join(over)
