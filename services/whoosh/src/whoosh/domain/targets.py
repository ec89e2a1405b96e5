"""What discovery finds: agent endpoints, and how many agents should exist."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentTarget:
    """One agent's HTTP endpoint as found by discovery (not yet known to be healthy)."""

    url: str  # base URL, e.g. http://10.0.13.5:8080 (no trailing slash)
    name: str  # what discovery calls it (Swarm task name, IP, URL host)
    address: str  # host/IP part of url: two targets on different IPs are different hosts


@dataclass(frozen=True)
class DiscoveryResult:
    targets: tuple[AgentTarget, ...]
    # How many agents the source says should exist (Swarm replicas, static list size);
    # None when the source cannot know (DNS). The gap to "healthy" is reported, not hidden.
    expected: int | None
    source: str
    error: str | None = None
