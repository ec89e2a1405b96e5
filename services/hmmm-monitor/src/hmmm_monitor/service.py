"""The monitor's moving parts wired together, plus the refresh loop.

Routers ask this object for views; they never touch libp2p or the bootstrap client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from hmmm_monitor.bootstrap import BootstrapResult, BootstrapSource
from hmmm_monitor.connections import PeerConnector
from hmmm_monitor.consumer import MessageConsumer
from hmmm_monitor.coverage import build_coverage
from hmmm_monitor.metrics import MonitorMetrics
from hmmm_monitor.quality import EMPTY_DELIVERY, LinkProber
from hmmm_monitor.settings import Settings
from hmmm_monitor.store import MessageStore
from hmmm_monitor.topology import build_topology
from meshcommon.p2p.node import DialOutcome, NodeSnapshot

log = logging.getLogger(__name__)


class Runtime(Protocol):
    """What the monitor needs from MeshRuntime."""

    @property
    def peer_id(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def connect(self, peer_id: str, multiaddrs: Any) -> DialOutcome: ...

    async def snapshot(self) -> NodeSnapshot: ...

    async def ping(self, peer_id: str) -> float: ...


class Monitor:
    def __init__(
        self,
        settings: Settings,
        *,
        runtime: Runtime,
        bootstrap: BootstrapSource,
        connector: PeerConnector,
        store: MessageStore,
        consumer: MessageConsumer,
        metrics: MonitorMetrics,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.bootstrap = bootstrap
        self.connector = connector
        self.store = store
        self.consumer = consumer
        self.metrics = metrics
        self.prober = LinkProber(runtime, metrics=metrics)
        self.started_at = time.time()
        self.bootstrap_result = BootstrapResult((), "none", None, "not fetched yet")
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None
        self._snapshot: NodeSnapshot | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        await self.runtime.start()
        self.started_at = time.time()
        self._task = asyncio.create_task(self._loop(), name="hmmm-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.prober.aclose()
        try:
            await self.bootstrap.aclose()
        finally:
            await self.runtime.stop()

    async def _loop(self) -> None:
        while True:  # first round immediately, then every bootstrap_refresh_s
            try:
                await self.refresh_once()
            except Exception:
                log.exception("refresh round failed")
            await asyncio.sleep(self.settings.bootstrap_refresh_s)

    async def refresh_once(self) -> None:
        """Fetch the bootstrap list, then (re)connect every expected peer that is due."""
        result = await self.bootstrap.fetch()
        self.bootstrap_result = result
        self.connector.set_expected(result.peers)
        await self.connector.run_round()
        self.rounds += 1
        await self.snapshot()
        # RTT to every connected peer, in the background: a slow peer never delays the
        # next round (a sweep still running when the next one is due is skipped).
        connected = self.connector.connected_peers
        self.prober.prune(set(connected) | set(self.connector.peers))
        self.prober.start_sweep(connected)

    # -- views --------------------------------------------------------------------------
    async def snapshot(self) -> NodeSnapshot | None:
        """The node's state, refreshed; also keeps metrics and connection state in sync."""
        try:
            snap = await self.runtime.snapshot()
        except Exception as exc:
            log.debug("snapshot unavailable: %s", exc)
            return self._snapshot
        self._snapshot = snap
        self.connector.observe(snap.connected_peers)
        self.metrics.sync_dropped(snap.dropped_by_topic)
        self.metrics.sync_outbound_dropped(snap.outbound_dropped)
        self._update_gauges()
        return snap

    def _update_gauges(self) -> None:
        expected = self.connector.peers
        heard = self.store.heard_since(time.time() - self.settings.heard_window_s)
        self.metrics.peers_expected.set(len(expected))
        self.metrics.peers_connected.set(sum(1 for s in expected.values() if s.connected))
        self.metrics.peers_heard.set(len(heard & set(expected)))
        age = self.bootstrap_result.age_s()
        self.metrics.bootstrap_age.set(age if age is not None else float("nan"))
        self.metrics.sync_lost(self.store.lost_by_sender(), set(expected))

    def coverage(self) -> dict[str, object]:
        snap = self._snapshot
        return build_coverage(
            expected=self.connector.peers,
            senders=self.store.senders(),
            now=time.time(),
            heard_window_s=self.settings.heard_window_s,
            bootstrap=self.bootstrap_result.info(),
            dropped=snap.dropped_by_topic if snap else {},
            outbound_dropped=snap.outbound_dropped if snap else {},
            rejected=self.store.rejected_counts(),
            monitor_peer_id=self.runtime.peer_id,
        )

    def topology(self) -> dict[str, object]:
        senders = self.store.senders()
        return build_topology(
            monitor_peer_id=self.runtime.peer_id,
            monitor_connected=self.connector.connected_peers,
            expected={pid: s.name for pid, s in self.connector.peers.items()},
            last_heard={pid: s.last_heard for pid, s in senders.items() if s.count},
            availability=self.store.availability(),
            now=time.time(),
            heard_window_s=self.settings.heard_window_s,
        )

    def peers(self) -> list[dict[str, object]]:
        senders = self.store.senders()
        delivery = self.store.delivery()
        now = time.time()
        out = []
        for state in sorted(self.connector.peers.values(), key=lambda s: (s.priority, s.peer_id)):
            doc = state.to_dict()
            # Connection quality (field report improvement 6): RTT of our link to the
            # peer, loss and latency of its gossip as it reaches us. See quality.py.
            doc.update(self.prober.get(state.peer_id).to_dict())
            since = state.connected_since if state.connected else None
            doc["connection_uptime_s"] = None if since is None else round(now - since, 1)
            doc.update(delivery.get(state.peer_id, EMPTY_DELIVERY).to_dict())
            heard = senders.get(state.peer_id)
            doc["messages_heard"] = heard.count if heard else 0
            doc["messages_rejected"] = heard.rejected if heard else 0
            doc["last_heard"] = heard.last_heard if heard and heard.count else None
            doc["by_topic"] = dict(heard.by_topic) if heard else {}
            out.append(doc)
        return out
