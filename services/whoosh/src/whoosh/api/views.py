"""Snapshot -> JSON shapes of the read endpoints."""

from __future__ import annotations

from typing import Any

from meshcommon.health import HealthFields, HealthVerdict
from whoosh.domain.agent_status import AgentStatus
from whoosh.workers.directory import Snapshot


def agent_view(status: AgentStatus) -> dict[str, Any]:
    return {
        "url": status.target.url,
        "name": status.name,
        "state": status.state,
        "reason": status.reason,
        "detail": status.detail,
        "peer_id": status.peer_id,
        "multiaddrs": status.multiaddrs,
        "rejected_multiaddrs": [
            {"multiaddr": r.multiaddr, "reason": r.reason, "detail": r.detail}
            for r in status.rejected
        ],
        "last_seen": status.last_seen.isoformat() if status.last_seen else None,
        "attempts": status.attempts,
        "latency_ms": status.latency_ms,
        "signed": status.signed,
        "record_seq": status.record.seq if status.record else None,
    }


def impostor_view(status: AgentStatus) -> dict[str, Any]:
    """A host whose claim to a peer ID its signed peer record did not prove."""
    record = status.record
    return {
        "url": status.target.url,
        "name": status.target.name,  # discovery's name: the answer's own is not trusted
        "peer_id": status.peer_id,
        "reason": record.reason if record else status.reason,
        "detail": status.detail,
    }


def health_view(snap: Snapshot, version: str, verdict: HealthVerdict) -> dict[str, Any]:
    """``/api/health``: how WHOOSH is doing (ok / degraded / failing) and its last round."""
    return {
        **HealthFields.of(verdict),
        "service": "whoosh",
        "version": version,
        "discovery_source": snap.source,
        "last_round_at": snap.updated_at.isoformat() if snap.updated_at else None,
        "last_round_seconds": snap.round_seconds,
        "discovery_error": snap.discovery_error,
        "summary": snap.summary.model_dump(mode="json"),
    }


def round_view(snap: Snapshot) -> dict[str, Any]:
    return {
        "summary": snap.summary.model_dump(mode="json"),
        "source": snap.source,
        "updated_at": snap.updated_at.isoformat() if snap.updated_at else None,
        "count": snap.bootstrap.count,
        "discovery_error": snap.discovery_error,
    }


def agents_view(snap: Snapshot) -> dict[str, Any]:
    # Unreachable first: the ones an operator is looking for.
    statuses = sorted(snap.statuses, key=lambda s: (s.state == "healthy", s.target.url))
    return {
        **round_view(snap),
        "agents": [agent_view(s) for s in statuses],
        "unhealthy": [s.target.name for s in statuses if s.state != "healthy"],
        "duplicate_peer_ids": [d.as_dict() for d in snap.duplicates],
        "impostors": [impostor_view(s) for s in statuses if s.claim_refused],
        "left": [p.model_dump(mode="json") for p in snap.bootstrap.left],
    }
