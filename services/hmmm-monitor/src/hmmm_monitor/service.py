"""The monitor as its routes and its lifespan see it: its parts, the refresh loop, and the
views the API serves. Routers ask this object for views; they never touch libp2p or the
bootstrap client."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from hmmm_monitor.consumer import GossipConsumer
from hmmm_monitor.domain.coverage import build_coverage
from hmmm_monitor.domain.diagnosis import CHECKS, BootstrapFacts, MonitorFacts
from hmmm_monitor.domain.expected_peers import ExpectedPeers, impostor_report, with_dht_peers
from hmmm_monitor.domain.health import assess_health
from hmmm_monitor.domain.neighbourhood import LinkThresholds, Neighbourhood, build_neighbourhood
from hmmm_monitor.domain.peer_report import peer_rows
from hmmm_monitor.domain.store import MessageStore
from hmmm_monitor.domain.topology import Topology, build_topology
from hmmm_monitor.metrics import MonitorMetrics
from hmmm_monitor.settings import Settings
from hmmm_monitor.workers.connector import PeerConnector
from hmmm_monitor.workers.link_prober import LinkProber
from meshcommon.aio import cancel_and_wait
from meshcommon.diagnosis import Diagnosis, Unavailable
from meshcommon.health import HealthVerdict, LoopProgress, stuck_limit_s
from meshcommon.models import PnetRefusalRecord
from meshcommon.multiaddr_policy import FilterResult, MultiaddrPolicy
from meshcommon.p2p.types import DialOutcome, KeyProof, MeshView, NodeSnapshot
from meshcommon.peer.addresses import advertised_multiaddrs
from meshcommon.peer.bootstrap_client import NOT_FETCHED, BootstrapResult, BootstrapSource
from meshcommon.peer.refresh import run_refresh_rounds

log = logging.getLogger(__name__)


class Runtime(Protocol):
    """What the monitor needs from MeshRuntime."""

    @property
    def peer_id(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def connect(self, peer_id: str, multiaddrs: Any) -> DialOutcome: ...

    async def snapshot(self) -> NodeSnapshot: ...

    async def mesh_view(self) -> MeshView: ...

    async def ping(self, peer_id: str) -> float: ...

    async def prove_key(self, peer_id: str, multiaddr: str) -> KeyProof: ...

    async def dht_peers(self) -> list[tuple[str, tuple[str, ...]]]: ...


@dataclass
class Monitor:
    settings: Settings
    version: str
    runtime: Runtime
    policy: MultiaddrPolicy
    bootstrap: BootstrapSource
    expected: ExpectedPeers
    connector: PeerConnector
    prober: LinkProber
    store: MessageStore
    consumer: GossipConsumer
    metrics: MonitorMetrics
    started_at: float = field(default_factory=time.time)
    bootstrap_result: BootstrapResult = NOT_FETCHED
    refresh_progress: LoopProgress = field(default_factory=LoopProgress)
    _task: asyncio.Task[None] | None = None
    _node: NodeSnapshot | None = None
    _mesh: MeshView | None = None
    _node_answers: bool = False  # the last snapshot attempt succeeded

    @property
    def node(self) -> NodeSnapshot | None:
        """The libp2p node's state as last read by ``sync_node_state``."""
        return self._node

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        await self.runtime.start()
        self.started_at = time.time()
        self.refresh_progress = LoopProgress()
        log.info("HMMM monitor %s started", self.runtime.peer_id)
        self._task = asyncio.create_task(self._refresh_forever(), name="hmmm-refresh")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.connector.aclose()
        await self.prober.aclose()
        try:
            await self.bootstrap.aclose()
        finally:
            await self.runtime.stop()

    async def _refresh_forever(self) -> None:
        await run_refresh_rounds(
            self._round, self._next_wait_s, what="refresh", progress=self.refresh_progress
        )

    async def _round(self, wait_s: float) -> bool:
        before = self.bootstrap_result.peers
        await self.refresh_once(wait_s)
        return self.bootstrap_result.peers != before

    def _next_wait_s(self) -> float:
        """Wait for news at most a refresh period, and not past the next dial that is due
        (a peer in backoff)."""
        due_in = self.expected.next_dial_in()
        interval = self.settings.bootstrap_refresh_s
        return interval if due_in is None else min(interval, due_in)

    async def refresh_once(self, wait_s: float = 0.0) -> None:
        """Fetch the bootstrap list (waiting up to ``wait_s`` for it to change), then
        (re)connect every expected peer that is due."""
        self.bootstrap_result = await self.bootstrap.fetch(wait_s)
        result = self.bootstrap_result
        expected = with_dht_peers(
            result.peers,
            await self._dht_peers(),
            listed_by_whoosh=result.source == "whoosh",
            known_names={pid: state.name for pid, state in self.expected.peers.items()},
        )
        self.expected.set_expected(expected, self.bootstrap_result.left)
        await self.connector.run_round()
        await self.sync_node_state()
        # RTT to every connected peer, in the background: a slow peer never delays the
        # next round (a sweep still running when the next one is due is skipped).
        connected = self.expected.connected_peers
        self.prober.prune(set(connected) | set(self.expected.peers))
        self.prober.start_sweep(connected)

    async def _dht_peers(self) -> list[tuple[str, tuple[str, ...]]]:
        """The DHT's finds ([] when the node does not answer: the list alone counts)."""
        try:
            return await self.runtime.dht_peers()
        except Exception as exc:
            log.debug("DHT peers unavailable: %s", exc)
            return []

    async def sync_node_state(self) -> NodeSnapshot | None:
        """Read the node's state and bring connection state and gauges up to date with it;
        the last good reading when the node does not answer."""
        try:
            node = await self.runtime.snapshot()
        except Exception as exc:
            log.debug("node state unavailable: %s", exc)
            self._node_answers = False
            return self._node
        self._node, self._node_answers = node, True
        self.metrics.trio_tasks.set(node.trio_tasks)
        self.connector.observe(node.connected_peers)
        self._update_gauges()
        return node

    async def read_mesh(self) -> MeshView | None:
        """The node's libp2p view now (one call into its thread); the last good one when
        the node does not answer."""
        try:
            self._mesh = await self.runtime.mesh_view()
        except Exception as exc:
            log.debug("mesh view unavailable: %s", exc)
        return self._mesh

    @property
    def mesh(self) -> MeshView | None:
        """The libp2p view as last read by ``read_mesh``."""
        return self._mesh

    def _update_gauges(self) -> None:
        expected = self.expected.peers
        heard = self.store.heard_since(time.time() - self.settings.heard_window_s)
        self.metrics.peers_expected.set(len(expected))
        self.metrics.peers_connected.set(sum(1 for s in expected.values() if s.connected))
        self.metrics.peers_heard.set(len(heard & set(expected)))
        self.metrics.set_peer_heard({pid: s.name for pid, s in expected.items()}, heard)
        self.metrics.mesh_components.set(len(self._topology().components))
        self.metrics.peers_left.set(len(self.expected.left))
        age = self.bootstrap_result.age_s()
        self.metrics.bootstrap_age.set(age if age is not None else float("nan"))
        self.metrics.peer_id_conflicts.set(sum(1 for s in expected.values() if s.conflict))
        self.metrics.impostors.set(sum(len(s.impostors()) for s in expected.values()))
        view = self.neighbourhood()
        self.metrics.set_neighbourhood(view, set(expected) | set(view.reports), self.link_limits)

    @property
    def link_limits(self) -> LinkThresholds:
        s = self.settings
        return LinkThresholds(s.link_slow_rtt_ms, s.link_lossy_ratio)

    def neighbourhood(self) -> Neighbourhood:
        """The agents' fresh neighbours reports (within the heard window)."""
        since = time.time() - self.settings.heard_window_s
        return build_neighbourhood(self.store.availability(), since=since)

    # -- views (call sync_node_state() first for a fresh picture) ---------------------
    def advertised(self) -> FilterResult:
        return advertised_multiaddrs(self.settings, self.policy, self.runtime.peer_id)

    def health(self) -> HealthVerdict:
        expected = self.expected.peers
        heard = self.store.heard_since(time.time() - self.settings.heard_window_s) & set(expected)
        s = self.settings
        return assess_health(
            node_running=self._node_answers,
            expected=len(expected),
            connected=sum(1 for p in expected.values() if p.connected),
            heard=len(heard),
            bootstrap_age_s=self.bootstrap_result.age_s(),
            refresh_s=s.bootstrap_refresh_s,
            refresh=self.refresh_progress,
            # A round waits for news up to one period, then may retry an unreachable
            # WHOOSH; only a loop silent well beyond that is stuck.
            stuck_after_s=stuck_limit_s(s.bootstrap_refresh_s, s.bootstrap_fetch_budget_s),
            now=time.monotonic(),
        )

    def coverage(self) -> dict[str, object]:
        node = self._node
        return build_coverage(
            expected=self.expected.peers,
            left=self.expected.left,
            senders=self.store.senders(),
            now=time.time(),
            heard_window_s=self.settings.heard_window_s,
            bootstrap=self.bootstrap_result.info(),
            dropped=node.dropped_by_topic if node else {},
            outbound_dropped=node.outbound_dropped if node else {},
            rejected=self.store.rejected_counts(),
            monitor_peer_id=self.runtime.peer_id,
        )

    def topology(self) -> dict[str, object]:
        """Call ``read_mesh()`` first: the first-hand edges come from the mesh view."""
        return self._topology().view

    def _topology(self) -> Topology:
        senders = self.store.senders()
        return build_topology(
            monitor_peer_id=self.runtime.peer_id,
            monitor_view=self._mesh,
            expected={pid: s.name for pid, s in self.expected.peers.items()},
            last_heard={pid: s.last_heard for pid, s in senders.items() if s.count},
            availability=self.store.availability(),
            now=time.time(),
            heard_window_s=self.settings.heard_window_s,
        )

    def diagnosis(self) -> Diagnosis:
        """What the monitor can tell is wrong (call ``sync_node_state()`` and
        ``read_mesh()`` first)."""
        now = time.time()
        window = self.settings.heard_window_s
        names = {pid: r.message.name for pid, r in self.store.availability().items()}
        names.update({pid: s.name for pid, s in self.expected.peers.items()})
        topology = self._topology()
        node = self.node
        facts = MonitorFacts(
            now=now,
            uptime_s=now - self.started_at,
            monitor_peer_id=self.runtime.peer_id,
            heard_window_s=window,
            clock_skew_threshold_s=self.settings.clock_skew_threshold_s,
            expected=self.expected.peers,
            heard=frozenset(self.store.heard_since(now - window)),
            names={pid: n for pid, n in names.items() if n},
            mesh=Unavailable("libp2p node not answering") if self._mesh is None else self._mesh,
            components=topology.components,
            foreign=topology.foreign,
            topic_publishers=self.store.topic_publishers(now - window),
            delivery=self.store.delivery(),
            bootstrap=BootstrapFacts.of(self.bootstrap_result, now),
            whoosh_configured=bool(self.settings.whoosh_url),
            private_network=bool(self.settings.pnet_key_file),
            pnet_recent=[PnetRefusalRecord(**vars(r)) for r in node.pnet_recent] if node else (),
            neighbourhood=self.neighbourhood(),
            identities=dict(self.prober.identities),
            link_limits=self.link_limits,
        )
        return CHECKS.diagnosis("monitor", self.version, facts)

    @property
    def peer_id(self) -> str:
        return self.runtime.peer_id

    @property
    def messages_received(self) -> int:
        """Messages received since the start (every one, kept or not)."""
        return self.store.total

    def recent_messages(
        self, *, topic: str | None, sender: str | None, type_: str | None, limit: int
    ) -> list[dict[str, object]]:
        """The latest kept messages, newest last, filtered, as the API shows them."""
        found = self.store.recent(topic=topic, sender=sender, type_=type_, limit=limit)
        return [msg.to_dict() for msg in found]

    def impostors(self) -> list[dict[str, object]]:
        return impostor_report(self.expected.peers.values())

    def peers(self) -> list[dict[str, object]]:
        return peer_rows(
            self.expected.peers.values(),
            neighbourhood=self.neighbourhood(),
            links=self.prober.links,
            delivery=self.store.delivery(),
            senders=self.store.senders(),
            now=time.time(),
        )
