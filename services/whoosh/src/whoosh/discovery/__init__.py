"""Where agents are: pluggable discovery sources (static list, DNS, Docker Swarm API)."""

from whoosh.discovery.base import AgentTarget, DiscoveryResult, DiscoverySource
from whoosh.discovery.factory import build_source

__all__ = ["AgentTarget", "DiscoveryResult", "DiscoverySource", "build_source"]
