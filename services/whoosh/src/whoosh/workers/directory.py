"""AgentDirectory: the cached discovery state and the loop that keeps it fresh.

Reads never wait for the network: every round builds a new immutable ``Snapshot`` and swaps
one reference, so readers (any thread) see either the old or the new state, never half.

Each round also notes which agents left on purpose (``whoosh.domain.departures``): they are
listed under ``left`` with the reason, so clients stop expecting them instead of reporting
them missing.

Rounds run every ``poll_interval_s``. A change (start-up, a Swarm event, targets that
appear or go) starts a converging window: for ``converge_window_s`` the agents that are
not healthy yet are re-checked every ``converge_poll_s`` (the healthy ones are not asked
again), so a new agent is listed within about a second of answering, without shortening
the period. Clients waiting for a new list (``wait_for_change``) are woken at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from meshcommon.aio import cancel_and_wait
from meshcommon.health import LoopProgress
from meshcommon.models import BootstrapResponse, DiscoverySummary, PeerViewInfo, utcnow
from whoosh.adapters.discovery.base import DiscoverySource
from whoosh.adapters.health_poller import HealthPoller
from whoosh.domain.agent_status import AgentStatus, shadow_unproven
from whoosh.domain.bootstrap_list import DuplicatePeerId, bootstrap_etag, build_bootstrap
from whoosh.domain.departures import Departures
from whoosh.domain.peer_claims import CLAIM_REASONS
from whoosh.domain.peer_view import PeerIndex, PeerView
from whoosh.domain.targets import AgentTarget, DiscoveryResult
from whoosh.metrics import WhooshMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    source: str
    updated_at: datetime | None = None  # None until the first round finished
    bootstrap: BootstrapResponse = field(
        default_factory=lambda: BootstrapResponse(bootstrap_peers=[], count=0)
    )
    statuses: tuple[AgentStatus, ...] = ()
    duplicates: tuple[DuplicatePeerId, ...] = ()
    discovery_error: str | None = None
    round_seconds: float | None = None

    @property
    def summary(self) -> DiscoverySummary:
        return self.bootstrap.summary

    @cached_property
    def etag(self) -> str:
        """An HTTP entity tag of the bootstrap entries and the peers that left: it changes
        exactly when the list a client would dial, or whom it should stop expecting,
        changes (not with every round's timestamp)."""
        return bootstrap_etag(self.bootstrap.bootstrap_peers, self.bootstrap.left)

    @cached_property
    def bootstrap_json(self) -> bytes:
        """The bootstrap list as the JSON ``GET /api/v1/bootstrap-peers`` answers, rendered
        once per snapshot: every agent and monitor asks for it, and validating and
        serialising the model again for each request is most of what the route costs."""
        return self.bootstrap.model_dump_json(by_alias=True).encode()

    @cached_property
    def peer_index(self) -> PeerIndex:
        """The listed peers indexed for per-agent views (built on the first view asked)."""
        return PeerIndex(self.bootstrap.bootstrap_peers)

    def view(self, peer_id: str, k: int) -> PeerView:
        return self.peer_index.view(peer_id, k)

    def view_json(self, view: PeerView) -> bytes:
        """``GET /api/v1/bootstrap-peers/view``: the view's entries, the list's summary,
        and whose view it is (no departures: the whole list has them)."""
        index = self.peer_index
        response = BootstrapResponse(
            bootstrap_peers=index.entries(view),
            count=len(view.peer_ids),
            updated_at=self.updated_at,
            summary=self.summary,
            view=PeerViewInfo(
                peer_id=view.peer_id,
                k=view.k,
                successor=view.successor,
                predecessor=view.predecessor,
                total=len(index),
            ),
        )
        return response.model_dump_json(by_alias=True).encode()


class AgentDirectory:
    """Every agent discovery found, its health, and the bootstrap list built from them."""

    def __init__(
        self,
        source: DiscoverySource,
        poller: HealthPoller,
        metrics: WhooshMetrics,
        poll_interval_s: float,
        *,
        converge_poll_s: float = 1.0,
        converge_window_s: float = 30.0,
        departures: Departures | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.poller = poller
        self.metrics = metrics
        self.poll_interval_s = poll_interval_s
        self.converge_poll_s = converge_poll_s
        self.converge_window_s = converge_window_s
        self.departures = departures or Departures(keep_s=900.0)
        self._clock = clock
        self._converge_until = 0.0
        self._wake = asyncio.Event()
        self._list_changed = asyncio.Event()
        self._snapshot = Snapshot(source=source.name)
        self._first_seen: dict[str, datetime] = {}
        self._last_targets: tuple[AgentTarget, ...] = ()
        self._last_error: str | None = None
        self._last_duplicates: set[DuplicatePeerId] = set()
        self._left_reasons: set[str] = set()
        self._shadowed: set[str] = set()  # unsigned answers not listed (logged once)
        self._inflight: asyncio.Task[Snapshot] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self.progress = LoopProgress(started_at=clock())

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def now(self) -> float:
        """The directory's clock (the one ``progress`` is measured with)."""
        return self._clock()

    # -- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        if self._loop_task is None:
            self.progress = LoopProgress(started_at=self._clock())
            self.converge("start-up")
            self._loop_task = asyncio.create_task(self._run(), name="whoosh-discovery")

    async def stop(self) -> None:
        await cancel_and_wait(self._loop_task, self._inflight)
        self._loop_task = None

    def converge(self, why: str) -> None:
        """Something changed (a Swarm event, new targets): check soon, and keep checking
        the agents that are not healthy yet until the window closes."""
        log.debug("discovery converging: %s", why)
        self._converge_until = self._clock() + self.converge_window_s
        self._wake.set()

    def converging(self) -> bool:
        return self._clock() < self._converge_until and not _complete(self._snapshot)

    async def wait_for_change(self, etag: str, within_s: float) -> Snapshot:
        """The current snapshot as soon as its list differs from ``etag`` (or when
        ``within_s`` has passed): what a long-polling client waits on."""
        deadline = self._clock() + within_s
        while self._snapshot.etag == etag:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._list_changed.wait(), remaining)
        return self._snapshot

    async def wait_for_view_change(
        self, peer_id: str, k: int, etag: str, within_s: float
    ) -> tuple[Snapshot, PeerView]:
        """The current snapshot and ``peer_id``'s view as soon as the view differs from
        ``etag`` (or when ``within_s`` has passed). A change of the list elsewhere wakes
        this waiter only to find its view unchanged: the client hears nothing."""
        deadline = self._clock() + within_s
        snap = self._snapshot
        view = snap.view(peer_id, k)
        while view.etag == etag:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            # asyncio.timeout, not wait_for: no task per wake-up (every change of the list
            # wakes every waiting agent; most of them find their view unchanged).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._list_changed.wait()
            if self._snapshot is not snap:
                snap = self._snapshot
                view = snap.view(peer_id, k)
        return snap, view

    async def _run(self) -> None:
        fast = False
        while True:  # first round immediately, then every poll_interval_s
            self._wake.clear()  # a change announced during the round wakes the next one
            try:
                await (self._recheck_unhealthy() if fast else self.refresh())
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad round kill discovery
                log.exception("discovery round failed; keeping the previous state")
            self.progress.completed(self._clock())
            fast = self.converging()
            delay = self.converge_poll_s if fast else self.poll_interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
                fast = False  # woken by a change: a full round (discovery included)

    # -- rounds -------------------------------------------------------------------
    async def refresh(self) -> Snapshot:
        """Run one round now. Single-flight: concurrent callers share the running round
        (a burst of refresh requests must not fan out N times to every agent)."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._round())
        # shield: a caller that goes away (client disconnect) must not cancel the others'.
        return await asyncio.shield(self._inflight)

    async def _recheck_unhealthy(self) -> Snapshot:
        """A converging round: discovery again, but only agents not healthy in the last
        round are asked (a healthy one answered less than a period ago)."""
        healthy = {s.target.url: s for s in self._snapshot.statuses if s.state == "healthy"}
        return await self._round(reuse=healthy)

    async def _round(self, reuse: dict[str, AgentStatus] | None = None) -> Snapshot:
        started = time.perf_counter()
        try:
            result = await self.source.discover()
        except Exception as exc:  # sources should not raise; if one does, it is an error
            result = DiscoveryResult((), None, self.source.name, f"{type(exc).__name__}: {exc}")
        self._note_discovery_error(result)

        targets = result.targets
        if not targets and result.error and self._last_targets:
            # A failed lookup (DNS hiccup, Docker API restart) must not empty the bootstrap
            # list: keep polling the agents we knew about until discovery works again.
            targets = self._last_targets
        elif targets:
            if self._last_targets and set(targets) != set(self._last_targets):
                self.converge("targets changed")  # start-up converges already
            self._last_targets = targets

        polled = await self.poller.poll(targets, reuse=reuse)
        statuses = shadow_unproven(polled)
        shadowed = {
            new.target.url for old, new in zip(polled, statuses, strict=True) if old is not new
        }
        for status in statuses:
            if status.target.url not in shadowed or status.record is None:
                continue
            # Counted like the poller's own refusals (each round a claim is refused).
            self.metrics.peer_records_rejected.labels(reason=status.record.reason).inc()
            if status.target.url not in self._shadowed:  # the poller logged it healthy
                log.warning(
                    "agent %s not listed: %s (%s)", status.target.url, status.reason, status.detail
                )
        self._shadowed = shadowed
        now = utcnow()
        view = build_bootstrap(statuses, result.expected, self._first_seen, now)
        self._first_seen = view.first_seen
        for peer in self.departures.observe(statuses, result.stopped, now, result.live_slots):
            log.info("agent %s (%s) left: %s", peer.name, peer.peer_id, peer.reason)
        left = self.departures.left
        elapsed = time.perf_counter() - started
        snap = Snapshot(
            source=result.source,
            updated_at=now,
            bootstrap=BootstrapResponse(
                bootstrap_peers=list(view.peers),
                count=len(view.peers),
                updated_at=now,
                summary=view.summary.model_copy(update={"left": len(left)}),
                left=list(left),
            ),
            statuses=tuple(statuses),
            duplicates=view.duplicates,
            discovery_error=result.error,
            round_seconds=round(elapsed, 3),
        )
        if self._snapshot.summary != snap.summary:  # one line when the picture changes
            sm = snap.summary
            log.info(
                "discovery (%s): expected=%s discovered=%d healthy=%d unreachable=%d missing=%d",
                snap.source,
                sm.expected,
                sm.discovered,
                sm.healthy,
                sm.unreachable,
                sm.missing,
            )
        changed = snap.etag != self._snapshot.etag
        self._snapshot = snap
        self._update_metrics(snap, elapsed)
        if changed:  # wake the long-polling clients, then arm a fresh event for the next
            self._list_changed.set()
            self._list_changed = asyncio.Event()
        return snap

    def _note_discovery_error(self, result: DiscoveryResult) -> None:
        if result.error:
            self.metrics.discovery_errors.labels(source=result.source).inc()
        if result.error != self._last_error:  # one log line per change
            if result.error:
                log.warning("discovery (%s) error: %s", result.source, result.error)
            elif self._last_error:
                log.info("discovery (%s) recovered", result.source)
            self._last_error = result.error

    def _update_metrics(self, snap: Snapshot, elapsed: float) -> None:
        s = snap.summary
        m = self.metrics
        m.agents_expected.set(math.nan if s.expected is None else s.expected)
        m.agents_discovered.set(s.discovered)
        m.agents_healthy.set(s.healthy)
        m.agents_unreachable.set(s.unreachable)
        m.duplicate_peer_ids.set(len(snap.duplicates))
        refused = Counter(s.record.reason for s in snap.statuses if s.claim_refused and s.record)
        for reason in CLAIM_REASONS:
            m.claims_refused.labels(reason=reason).set(refused[reason])
        m.agents_unsigned.set(
            sum(1 for s in snap.statuses if s.state == "healthy" and s.signed is False)
        )
        by_reason = Counter(p.reason for p in snap.bootstrap.left)
        for reason in {*by_reason, *self._left_reasons}:  # a reason that emptied goes to 0
            m.agents_left.labels(reason=reason).set(by_reason[reason])
        self._left_reasons |= set(by_reason)
        m.poll_round_seconds.observe(elapsed)
        for dup in set(snap.duplicates) - self._last_duplicates:  # log new ones only
            log.warning("duplicate peer id %s claimed by %s", dup.peer_id, ", ".join(dup.targets))
        self._last_duplicates = set(snap.duplicates)


def _complete(snap: Snapshot) -> bool:
    """Every target healthy and, where the source knows how many there should be, that
    many: nothing left to converge to."""
    s = snap.summary
    if snap.updated_at is None or s.unreachable:
        return False
    return s.expected is None or s.healthy >= s.expected
