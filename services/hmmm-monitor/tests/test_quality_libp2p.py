"""Connection quality end to end: real libp2p on loopback, the monitor app in process,
everything read through the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime

import pytest

from meshcommon import topics
from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig
from meshcommon.waiting import wait_until_async

from .conftest import StubBootstrap, addr, free_ports, peer, running_monitor

pytestmark = pytest.mark.anyio

UNMONITORED = "CHORUS/not-monitored/v1"  # no one subscribes: a publish here is a seqno hole


def availability(rt: MeshRuntime, name: str) -> bytes:
    now = datetime.now(UTC).isoformat()
    body = {
        "type": "availability",
        "node_id": rt.peer_id,
        "available_for_work": True,
        "current_tasks": 0,
        "max_tasks": 2,
        "last_activity": now,
        "status": "ready",
        "timestamp": now,
        "name": name,
    }
    return json.dumps(body).encode()


async def test_peers_api_reports_rtt_loss_and_latency(tmp_path) -> None:
    ports = free_ports(3)
    healthy = MeshRuntime(MeshNode(NodeConfig("127.0.0.1", ports[0])))
    lossy = MeshRuntime(MeshNode(NodeConfig("127.0.0.1", ports[1])))
    agents = {"healthy": healthy, "lossy": lossy}
    started: list[MeshRuntime] = []
    publisher: asyncio.Task[None] | None = None
    try:
        for rt in agents.values():
            await rt.start()
            started.append(rt)
        bootstrap = StubBootstrap(
            [
                peer(rt.peer_id, addr(p, rt.peer_id), name=name, priority=i + 1)
                for i, ((name, rt), p) in enumerate(zip(agents.items(), ports, strict=False))
            ]
        )
        async with running_monitor(tmp_path, ports[2], bootstrap) as (_app, http):
            monitor_id = (await http.get("/api/health")).json()["peer_id"]

            async def grafted() -> bool:
                # Publish only once each agent's mesh holds the monitor: messages sent
                # before the GRAFT never reach it and would (rightly) not count as lost,
                # but the first one that does would become the baseline mid-stream.
                for rt in agents.values():
                    snap = await rt.snapshot()
                    if monitor_id not in snap.mesh_peers.get(topics.COORDINATION, ()):
                        return False
                return True

            await wait_until_async(grafted, within_s=20, what="both agents to graft the monitor")
            heard: dict[str, int] = {"healthy": 0, "lossy": 0}

            async def publish() -> None:
                holes_made = False
                while True:
                    for name, rt in agents.items():
                        await rt.publish(topics.COORDINATION, availability(rt, name))
                        heard[name] += 1
                    if not holes_made and heard["lossy"] >= 5:
                        # Three seqnos the monitor can never see: a gap of exactly 3.
                        for _ in range(3):
                            await lossy.publish(UNMONITORED, b'{"type": "x"}')
                        holes_made = True
                    await asyncio.sleep(0.05)

            publisher = asyncio.create_task(publish())

            async def quality_ready() -> dict[str, dict] | None:
                rows = (await http.get("/api/v1/peers")).json()["peers"]
                by_name = {p["name"]: p for p in rows}
                ready = (
                    all(
                        p["connected"]
                        and p["rtt_ms"] is not None
                        and p["messages_heard"] >= 20
                        and p["delivery_latency_ms_median"] is not None
                        for p in by_name.values()
                    )
                    and by_name["lossy"]["messages_lost"] == 3
                )
                return by_name if ready else None

            peers, _ = await wait_until_async(quality_ready, within_s=30, what="RTT, loss, latency")
            assert isinstance(peers, dict)
            for name, p in peers.items():
                assert 0 < p["rtt_ms"] < 1000, (name, p)
                assert 0 < p["rtt_ewma_ms"] < 1000
                assert p["ping_failures"] == 0 and p["last_ping_error"] is None
                assert p["connection_uptime_s"] is not None and p["connection_uptime_s"] >= 0
                assert p["delivery_latency_clock"] == "sender"
                # Loopback, same clock: the median is a few milliseconds.
                assert 0 <= p["delivery_latency_ms_median"] < 1000
                assert p["seqno"]["restarts"] == 0 and p["seqno"]["duplicates"] == 0
            h = peers["healthy"]
            assert h["messages_lost"] == 0 and h["delivery_ratio"] == 1.0
            lossy_row = peers["lossy"]
            n = lossy_row["seqno"]["received"]
            assert lossy_row["delivery_ratio"] == pytest.approx(n / (n + 3), abs=1e-4)
            assert lossy_row["delivery_ratio"] < 1.0

            metrics = (await http.get("/metrics")).text
            assert f'hmmm_peer_rtt_seconds{{peer_id="{healthy.peer_id}"}}' in metrics
            assert "hmmm_messages_lost_total 3.0" in metrics
            assert "hmmm_ping_rtt_seconds_count" in metrics
            page = (await http.get("/")).text
            assert "RTT ms" in page and "delivery" in page
    finally:
        if publisher is not None:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await publisher
        await asyncio.gather(*(rt.stop() for rt in started), return_exceptions=True)
