"""What discovery finds: agent endpoints, how many agents should exist, and which tasks the
orchestrator stopped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AgentTarget:
    """One agent's HTTP endpoint as found by discovery (not yet known to be healthy)."""

    url: str  # base URL, e.g. http://10.0.13.5:8080 (no trailing slash)
    name: str  # what discovery calls it (Swarm task name, IP, URL host)
    address: str  # host/IP part of url: two targets on different IPs are different hosts
    # The Swarm task behind it, its service and slot (Swarm discovery only).
    task_id: str = ""
    service: str = ""
    slot: int | None = None
    # Ports the task publishes on its node in host mode, (container port, node port), and
    # that node's address: the agent is also reachable there, from outside the overlay.
    node_address: str = ""
    host_ports: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class StoppedTask:
    """A task of the agent service that Swarm no longer wants running, as discovery saw it."""

    task_id: str
    slot: int | None  # None for a global service
    slot_live: bool  # another task of its service holds (or is about to hold) the slot
    desired_state: str  # shutdown or remove
    state: str  # the last state its node reported (running until the node stops it)
    node_ready: bool  # the manager hears its node
    node_draining: bool
    outdated_spec: bool  # the service's spec changed since the task was created
    rolling_back: bool  # the service is rolling back an update


@dataclass(frozen=True)
class DiscoveryResult:
    targets: tuple[AgentTarget, ...]
    # How many agents the source says should exist (Swarm replicas, static list size);
    # None when the source cannot know (DNS). The gap to "healthy" is reported, not hidden.
    expected: int | None
    source: str
    error: str | None = None
    # Tasks the orchestrator no longer wants running (Swarm discovery only): why their
    # agents left.
    stopped: tuple[StoppedTask, ...] = ()
    # Slots of each service discovered that a task holds or is about to hold (Swarm).
    live_slots: Mapping[str, frozenset[int]] = field(default_factory=dict)
