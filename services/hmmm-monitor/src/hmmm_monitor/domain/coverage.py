"""Coverage: of the peers we expect, how many are connected and how many were heard.

A number with names: who is missing, why a peer is not connected, who left on purpose, and
who is talking that WHOOSH does not know about.

``connected`` counts the expected peers with a direct connection to the monitor; ``heard``
counts the expected peers whose messages arrived within the window, directly or forwarded
by other peers (GossipSub). They differ on purpose: a monitor that can dial only a few
peers (outside the overlay, through a gateway agent) still hears every agent, and an agent
it hears is never ``missing``, only ``not_connected`` with the reason it cannot be dialled.
``heard_via_mesh`` is how many were heard without a direct connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from hmmm_monitor.domain.expected_peers import PeerState
from hmmm_monitor.domain.store import SenderStats
from meshcommon.models import LeftPeer


def iso(ts: float | None) -> str | None:
    return None if not ts else datetime.fromtimestamp(ts, UTC).isoformat()


def build_coverage(
    *,
    expected: Mapping[str, PeerState],
    left: Mapping[str, LeftPeer] | None = None,
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
    left = left or {}
    # A peer that left may still be heard for a window: that is not a stranger talking.
    unexpected = sorted(heard - set(expected) - set(left) - {monitor_peer_id})
    heard_expected = heard & set(expected)
    return {
        "expected": len(expected),
        "connected": sum(1 for s in expected.values() if s.connected),
        "heard": len(heard_expected),
        "heard_via_mesh": sum(1 for pid in heard_expected if not expected[pid].connected),
        "heard_window_s": heard_window_s,
        "missing": missing,
        "not_connected": not_connected,
        "left": [
            {"peer_id": p.peer_id, "name": p.name, "reason": p.reason, "at": p.at.isoformat()}
            for p in sorted(left.values(), key=lambda p: (p.at, p.peer_id), reverse=True)
        ],
        "unexpected": unexpected,
        "bootstrap": dict(bootstrap),
        "dropped": {
            "queue_full": sum(dropped.values()),
            "rejected": dict(rejected),
            # what this node failed to send on (it forwards as a mesh member)
            "outbound": dict(outbound_dropped or {}),
        },
    }
