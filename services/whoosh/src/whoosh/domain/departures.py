"""Which agents left on purpose, and why. Pure: no I/O, no clock of its own.

Swarm says why a task stopped: its desired state changed because the service was scaled
down (desired state ``remove``; its slot is gone: Swarm keeps whichever slots it likes, not
the lowest), its node was drained, or the service was updated or rolled back (the task's
spec is not the service's any more; its slot gets a new task). Such
an agent is ``left``: clients stop expecting it. A task that failed, exited on its own, or
ran on a node the manager lost contact with is a failure: its agent stays expected (and is
reported missing) until it, or its slot's replacement, answers again.

Discovery reports tasks by ID; only a health poll knows an agent's peer ID. So the peer
that each task last answered with is remembered, and when that task stops, its peer is the
one that left. Swarm deletes a scaled-down task a few seconds after it stopped: a task
that vanished together with its slot was scaled down too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
    slot_gone = task.slot is not None and not task.slot_live
    if task.desired_state == "remove" or slot_gone:
        return LEFT_SCALED_DOWN
    if task.node_draining:
        return LEFT_NODE_DRAINED
    if task.outdated_spec:
        return LEFT_ROLLED_BACK if task.rolling_back else LEFT_UPDATED
    return None  # stopped for a reason this module does not know: not assumed harmless


@dataclass(frozen=True)
class _KnownTask:
    """The peer a task last answered with, and where the task belongs."""

    peer_id: str
    name: str
    service: str
    slot: int | None


class Departures:
    """The peers that left on purpose: each for ``keep_s`` after it left, at most
    ``max_entries`` (the most recent), and only until it answers healthy again (a slot's
    identity comes back with its replacement task after a drain or an update)."""

    def __init__(self, keep_s: float, max_entries: int = limits.MAX_LEFT_PEERS) -> None:
        self.keep = timedelta(seconds=keep_s)
        self.max_entries = max_entries
        self._peer_of_task: dict[str, _KnownTask] = {}
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
        live_slots: Mapping[str, frozenset[int]] | None = None,
    ) -> list[LeftPeer]:
        """Adopt one round: remember which peer each healthy task answered with, record
        the peers of tasks Swarm stopped on purpose (``live_slots``: each service's slots
        that a task holds now); returns the peers that left now."""
        statuses = list(statuses)
        healthy = {s.peer_id for s in statuses if s.state == "healthy" and s.peer_id}
        for s in statuses:
            t = s.target
            if s.state == "healthy" and s.peer_id and t.task_id:
                self._peer_of_task[t.task_id] = _KnownTask(s.peer_id, s.name, t.service, t.slot)
        reasons: dict[str, str | None] = {}
        for task in stopped:
            if task.task_id in self._peer_of_task:
                reasons[task.task_id] = departure_reason(task)
        # Tasks neither running nor stopped any more: Swarm deleted them.
        present = {s.target.task_id for s in statuses} | {t.task_id for t in stopped}
        for task_id in set(self._peer_of_task) - present:
            known = self._peer_of_task[task_id]
            slots = (live_slots or {}).get(known.service)
            slot_gone = slots is not None and known.slot is not None and known.slot not in slots
            reasons[task_id] = LEFT_SCALED_DOWN if slot_gone else None
        new: list[LeftPeer] = []
        for task_id, reason in reasons.items():
            known = self._peer_of_task.pop(task_id)  # judged once
            if reason is None or known.peer_id in healthy or known.peer_id in self._left:
                continue
            entry = LeftPeer(peer_id=known.peer_id, name=known.name, reason=reason, at=now)
            self._left[known.peer_id] = entry
            new.append(entry)
        self._expire(healthy, now)
        return new

    def _expire(self, healthy: set[str], now: datetime) -> None:
        for peer_id, entry in list(self._left.items()):
            if peer_id in healthy or now - entry.at > self.keep:
                del self._left[peer_id]
        if len(self._left) > self.max_entries:
            for entry in self.left[self.max_entries :]:
                del self._left[entry.peer_id]
