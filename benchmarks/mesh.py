"""The whole local mesh: time to 10/10, bootstrap answer time, RSS per process."""

from __future__ import annotations

import shutil
import statistics
import time

import httpx
import psutil

from meshlocal import LocalMesh, MeshLayout


def main(agents: int = 10) -> None:
    print(f"== local mesh: {agents} agents + WHOOSH + monitor (real processes) ==")
    layout = MeshLayout(
        agents=agents,
        agent_net="127.0.91",
        whoosh_ip="127.0.92.2",
        monitor_ip="127.0.92.3",
        broadcast_interval_s=5.0,
    )
    mesh = LocalMesh(layout)
    t0 = time.monotonic()
    try:
        mesh.start()
        boot = f"{layout.whoosh_url}/api/v1/bootstrap-peers"
        cov = f"{layout.monitor_url}/api/v1/coverage"
        t_disc = mesh.wait_for(
            lambda: mesh.get_json(boot)["count"] == agents, 120, interval=0.2, what="discovery"
        )
        t_heard = mesh.wait_for(
            lambda: mesh.get_json(cov)["heard"] == agents, 120, interval=0.2, what="heard"
        )
        print(f"time to {agents}/{agents} discovered by WHOOSH: {t_disc:.1f}s after start")
        print(f"time to {agents}/{agents} heard by monitor:    {t_disc + t_heard:.1f}s after start")
        with httpx.Client() as client:
            samples = []
            for _ in range(300):
                s = time.perf_counter()
                client.get(boot).raise_for_status()
                samples.append((time.perf_counter() - s) * 1000)
            token = {"Authorization": f"Bearer {mesh.admin_token}"}
            refresh = []
            for _ in range(5):
                s = time.perf_counter()
                client.post(
                    f"{layout.whoosh_url}/api/v1/discovery/refresh", headers=token, timeout=30
                ).raise_for_status()
                refresh.append((time.perf_counter() - s) * 1000)
        print(
            f"GET bootstrap-peers (cached): median {statistics.median(samples):.2f} ms, "
            f"p99 {sorted(samples)[296]:.2f} ms over 300"
        )
        print(
            f"forced refresh (poll all {agents} agents): median {statistics.median(refresh):.0f} ms"
        )
        rss = {
            p.name: psutil.Process(p.pid).memory_info().rss / 2**20 for p in mesh.processes if p.pid
        }
        agent_rss = [v for k, v in rss.items() if k.startswith("agent")]
        print(
            f"RSS: WHOOSH {rss['whoosh']:.0f} MiB, monitor {rss['hmmm-monitor']:.0f} MiB, "
            f"agent median {statistics.median(agent_rss):.0f} MiB"
        )
        procs = [psutil.Process(p.pid) for p in mesh.processes if p.pid]
        for p in procs:
            p.cpu_percent(None)
        time.sleep(5)
        cpu = {p.pid: p.cpu_percent(None) for p in procs}
        print(
            f"CPU over 5 s at steady state: total {sum(cpu.values()):.0f}% of one core "
            f"({len(procs)} processes)"
        )
    finally:
        mesh.stop()
        shutil.rmtree(mesh.run_dir, ignore_errors=True)
        print(f"(whole benchmark {time.monotonic() - t0:.0f}s)")
