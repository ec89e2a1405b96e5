"""One row of ``/api/v1/peers``: what the monitor knows about an expected peer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hmmm_monitor.domain.delivery import EMPTY_DELIVERY, DeliveryView
from hmmm_monitor.domain.expected_peers import PeerState
from hmmm_monitor.domain.link_quality import EMPTY_LINK, LinkQuality
from hmmm_monitor.domain.neighbourhood import Neighbourhood
from hmmm_monitor.domain.store import SenderStats


def peer_rows(
    states: Iterable[PeerState],
    *,
    links: Mapping[str, LinkQuality],
    neighbourhood: Neighbourhood | None = None,
    delivery: Mapping[str, DeliveryView],
    senders: Mapping[str, SenderStats],
    now: float,
) -> list[dict[str, object]]:
    """Connection state, the quality of the monitor's link (RTT), how the peer's gossip
    reaches the monitor (loss, latency), and what the peer reports of its own neighbours
    (topics, identify, link quality and traffic), best-priority first."""
    rows = []
    for state in sorted(states, key=lambda s: (s.priority, s.peer_id)):
        row = state.to_dict()
        row.update(links.get(state.peer_id, EMPTY_LINK).to_dict())
        since = state.connected_since if state.connected else None
        row["connection_uptime_s"] = None if since is None else round(now - since, 1)
        row.update(delivery.get(state.peer_id, EMPTY_DELIVERY).to_dict())
        heard = senders.get(state.peer_id)
        row["messages_heard"] = heard.count if heard else 0
        row["messages_rejected"] = heard.rejected if heard else 0
        row["last_heard"] = heard.last_heard if heard and heard.count else None
        row["by_topic"] = dict(heard.by_topic) if heard else {}
        # What this agent reports of its own neighbours (its last fresh broadcast).
        mine = neighbourhood.reports.get(state.peer_id, ()) if neighbourhood else ()
        row["neighbours"] = [n.to_dict() for n in mine]
        row["neighbours_rejected"] = (
            neighbourhood.rejected.get(state.peer_id) if neighbourhood else None
        )
        rows.append(row)
    return rows
