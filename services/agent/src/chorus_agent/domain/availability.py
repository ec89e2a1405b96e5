"""What an agent tells the mesh about itself on ``CHORUS/coordination/v1``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from meshcommon.models import AvailabilityMessage, utcnow
from meshcommon.neighbours import Neighbour


@dataclass
class WorkState:
    """The agent's load. Task execution is outside this service; the counters are what
    the coordinator reads, so they are kept honest here."""

    max_tasks: int
    current_tasks: int = 0
    last_activity: datetime = field(default_factory=utcnow)

    @property
    def available(self) -> bool:
        return self.current_tasks < self.max_tasks

    @property
    def status(self) -> str:
        return "available" if self.available else "busy"


def availability_message(
    node_id: str,
    work: WorkState,
    *,
    name: str,
    version: str,
    peers: list[str],
    multiaddrs: list[str] | None = None,
    neighbours: Sequence[Neighbour] = (),
) -> AvailabilityMessage:
    return AvailabilityMessage(
        node_id=node_id,
        available_for_work=work.available,
        current_tasks=work.current_tasks,
        max_tasks=work.max_tasks,
        last_activity=work.last_activity,
        status=work.status,
        name=name,
        version=version,
        peers=peers,
        multiaddrs=multiaddrs or [],
        neighbours=[n.to_wire() for n in neighbours],
    )
