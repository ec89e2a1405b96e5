"""Which agents left on purpose, and why. Pure: no I/O, no clock of its own.

Swarm says why a task stopped: its desired state changed because the service was scaled
down (slot above the replica count, or desired state ``remove``), its node was drained, or
the service was updated or rolled back (the task's spec is not the service's any more). Such
an agent is ``left``: clients stop expecting it. A task that failed, exited on its own, or
ran on a node the manager lost contact with is a failure: its agent stays expected (and is
reported missing) until it, or its slot's replacement, answers again.

Discovery reports tasks by ID; only a health poll knows an agent's peer ID. So the peer
that each task last answered with is remembered, and when that task stops, its peer is the
one that left.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Final

from meshcommon import limits
from meshcommon.models import (
    LEFT_NODE_DRAINED,
    LEFT_ROLLED_BACK,
    LEFT_SCALED_DOWN,
    LEFT_UPDATED,
    LeftPeer,
)
from whoosh.domain.agent_status import AgentStatus
from whoosh.domain.targets import StoppedTask

# Last reported states that mean the task ended by itself, not because Swarm stopped it:
# a crash, a failed health check, an exit, a task the manager gave up on.
FAILED_STATES: Final = frozenset({"failed", "rejected", "complete", "orphaned"})


def departure_reason(task: StoppedTask) -> str | None:
    """Why the task's agent left, when Swarm stopped it on purpose; None for a failure."""
    if task.state in FAILED_STATES or not task.node_ready:
        return None
    replicas = task.desired_replicas
    above_replicas = replicas is not None and task.slot is not None and task.slot > replicas
    if task.desired_state == "remove" or above_replicas:
        return LEFT_SCALED_DOWN
    if task.node_draining:
        return LEFT_NODE_DRAINED
    if task.outdated_spec:
        return LEFT_ROLLED_BACK if task.rolling_back else LEFT_UPDATED
    return None  # stopped for a reason this module does not know: not assumed harmless


class Departures:
    """The peers that left on purpose: each for ``keep_s`` after it left, at most
    ``max_entries`` (the most recent), and only until it answers healthy again (a slot's
    identity comes back with its replacement task after a drain or an update)."""

    def __init__(self, keep_s: float, max_entries: int = limits.MAX_LEFT_PEERS) -> None:
        self.keep = timedelta(seconds=keep_s)
        self.max_entries = max_entries
        self._peer_of_task: dict[str, tuple[str, str]] = {}  # task ID -> (peer ID, name)
        self._left: dict[str, LeftPeer] = {}

    @property
    def left(self) -> tuple[LeftPeer, ...]:
        """Most recent first."""
        return tuple(sorted(self._left.values(), key=lambda p: (p.at, p.peer_id), reverse=True))

    def observe(
        self,
        statuses: Iterable[AgentStatus],
        stopped: Sequence[StoppedTask],
        now: datetime,
    ) -> list[LeftPeer]:
        """Adopt one round: remember which peer each healthy task answered with, record
        the peers of tasks Swarm stopped on purpose; returns the peers that left now."""
        statuses = list(statuses)
        healthy = {s.peer_id for s in statuses if s.state == "healthy" and s.peer_id}
        for s in statuses:
            if s.state == "healthy" and s.peer_id and s.target.task_id:
                self._peer_of_task[s.target.task_id] = (s.peer_id, s.name)
        new: list[LeftPeer] = []
        for task in stopped:
            known = self._peer_of_task.pop(task.task_id, None)
            if known is None:
                continue  # never seen healthy, or already judged
            peer_id, name = known
            reason = departure_reason(task)
            if reason is None or peer_id in healthy or peer_id in self._left:
                continue
            entry = LeftPeer(peer_id=peer_id, name=name, reason=reason, at=now)
            self._left[peer_id] = entry
            new.append(entry)
        # Tasks neither running nor stopped any more are gone from Swarm's history.
        present = {s.target.task_id for s in statuses} | {t.task_id for t in stopped}
        for task_id in set(self._peer_of_task) - present:
            del self._peer_of_task[task_id]
        self._expire(healthy, now)
        return new

    def _expire(self, healthy: set[str], now: datetime) -> None:
        for peer_id, entry in list(self._left.items()):
            if peer_id in healthy or now - entry.at > self.keep:
                del self._left[peer_id]
        if len(self._left) > self.max_entries:
            for entry in self.left[self.max_entries :]:
                del self._left[entry.peer_id]
