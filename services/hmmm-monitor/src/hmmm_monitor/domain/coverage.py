"""Coverage: of the peers we expect, how many are connected and how many were heard.

A number with names: who is missing, why a peer is not connected, and who is talking that
WHOOSH does not know about.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from hmmm_monitor.domain.expected_peers import PeerState
from hmmm_monitor.domain.store import SenderStats


def iso(ts: float | None) -> str | None:
    return None if not ts else datetime.fromtimestamp(ts, UTC).isoformat()


def build_coverage(
    *,
    expected: Mapping[str, PeerState],
    senders: Mapping[str, SenderStats],
    now: float,
    heard_window_s: float,
    bootstrap: Mapping[str, object],
    dropped: Mapping[str, int],
    outbound_dropped: Mapping[str, int] | None = None,
    rejected: Mapping[str, int],
    monitor_peer_id: str = "",
) -> dict[str, object]:
    since = now - heard_window_s
    heard = {pid for pid, s in senders.items() if s.count and s.last_heard >= since}
    missing = []
    not_connected = []
    for pid, state in sorted(expected.items(), key=lambda kv: (kv[1].priority, kv[0])):
        if pid not in heard:
            last = senders.get(pid)
            missing.append(
                {
                    "peer_id": pid,
                    "name": state.name,
                    "connected": state.connected,
                    "last_heard": iso(last.last_heard) if last else None,
                }
            )
        if not state.connected:
            not_connected.append(
                {
                    "peer_id": pid,
                    "name": state.name,
                    "reason": state.reason,
                    "detail": state.last_error_detail,
                }
            )
    unexpected = sorted(heard - set(expected) - {monitor_peer_id})
    return {
        "expected": len(expected),
        "connected": sum(1 for s in expected.values() if s.connected),
        "heard": len(heard & set(expected)),
        "heard_window_s": heard_window_s,
        "missing": missing,
        "not_connected": not_connected,
        "unexpected": unexpected,
        "bootstrap": dict(bootstrap),
        "dropped": {
            "queue_full": sum(dropped.values()),
            "rejected": dict(rejected),
            # what this node failed to send on (it forwards as a mesh member)
            "outbound": dict(outbound_dropped or {}),
        },
    }
