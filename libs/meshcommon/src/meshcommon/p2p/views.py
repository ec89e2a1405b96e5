"""What a running node shows: its snapshot and its mesh view, read from the library's
tables in the node's trio thread (one call, no I/O)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import trio

from meshcommon.limits import MAX_MESH_VIEW_TOPICS
from meshcommon.p2p.host import Stack
from meshcommon.p2p.types import ConnectionView, MeshView, NodeSnapshot, TopicMesh

MAX_SCORED_PEERS_LISTED = 256  # peers with a score listed in the mesh view (worst first)


def snapshot(stack: Stack) -> NodeSnapshot:
    host, pubsub, gossipsub, counters = stack.host, stack.pubsub, stack.gossipsub, stack.counters
    connected = tuple(sorted(str(p) for p in host.get_connected_peers()))
    mesh = {t: tuple(sorted(str(p) for p in peers)) for t, peers in gossipsub.mesh.items()}
    return NodeSnapshot(
        peer_id=stack.peer_id,
        listen_port=stack.config.port,
        connected_peers=connected,
        topics=tuple(pubsub.topic_ids),
        mesh_peers=mesh,
        dropped_by_topic=dict(counters.dropped_by_topic),
        outbound_dropped=dict(counters.outbound_dropped),
        trio_tasks=count_trio_tasks(),
        private_network=stack.config.private_network,
        pnet_refused=counters.pnet_refused_table(),
        pnet_recent=tuple(counters.pnet_recent),
        graylisted=tuple(sorted(str(p) for p in stack.scorer.graylisted)) if stack.scorer else (),
        rejected=_by_reason(counters.rejected),
        stale_closed=dict(counters.stale_closed),
    )


def mesh_view(stack: Stack) -> MeshView:
    """The GossipSub mesh, fanout and announced subscriptions per topic, and every open
    connection with its direction, remote address, age and last ping RTT."""
    pubsub, gossipsub, counters, scorer = (
        stack.pubsub,
        stack.gossipsub,
        stack.counters,
        stack.scorer,
    )
    ours = set(pubsub.topic_ids)
    names = sorted(set(pubsub.peer_topics) | set(gossipsub.mesh) | set(gossipsub.fanout) | ours)
    # Our own topics first, so a flood of announced ones never hides them.
    names.sort(key=lambda t: t not in ours)
    listed = names[:MAX_MESH_VIEW_TOPICS]

    def ids(peers: Any) -> tuple[str, ...]:
        return tuple(sorted(str(p) for p in peers or ()))

    topics = tuple(
        TopicMesh(
            topic=t,
            subscribed=t in ours,
            mesh=ids(gossipsub.mesh.get(t)),
            fanout=ids(gossipsub.fanout.get(t)),
            subscribers=ids(pubsub.peer_topics.get(t)),
        )
        for t in sorted(listed)
    )
    connections = []
    for pid, conns in stack.host.get_network().get_connections_map().items():
        peer = str(pid)
        rtt = stack.pinger.rtt(peer)
        for conn in conns:
            if getattr(conn, "is_closed", False):
                continue
            connections.append(
                ConnectionView(
                    peer_id=peer,
                    direction=_direction(conn),
                    remote_addr=_remote_addr(conn),
                    opened_at=getattr(conn, "_created_at", None),
                    rtt_ms=rtt[0] if rtt else None,
                    rtt_at=rtt[1] if rtt else None,
                )
            )
    connections.sort(key=lambda c: (c.peer_id, c.opened_at or 0.0))
    scores, scores_omitted = scorer.peer_scores(MAX_SCORED_PEERS_LISTED) if scorer else ([], 0)
    return MeshView(
        peer_id=stack.peer_id,
        taken_at=time.time(),
        topics=topics,
        connections=tuple(connections),
        topics_omitted=len(names) - len(listed),
        scores=tuple(scores),
        scores_omitted=scores_omitted,
        graylist_threshold=scorer.params.graylist_threshold if scorer else None,
        validating=stack.validator is not None,
        rejected=_by_topic(counters.rejected),
        graylist_ignored_rpcs=counters.graylist_ignored_rpcs,
        graylistings=counters.graylistings,
        score_gated=counters.score_gated,
    )


def _by_reason(counts: Mapping[tuple[str, str], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, reason), n in dict(counts).items():
        out[reason] = out.get(reason, 0) + n
    return out


def _by_topic(counts: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (topic, reason), n in dict(counts).items():
        out.setdefault(topic, {})[reason] = n
    return out


def _direction(conn: Any) -> str:
    # py-libp2p's Direction is an IntEnum (INBOUND = 0): its name says it, its value not.
    value = getattr(conn, "direction", None)
    text = str(getattr(value, "name", None) or value or "unknown").lower()
    return text if text in ("inbound", "outbound") else "unknown"


def _remote_addr(conn: Any) -> str | None:
    """``/ip4/10.0.13.5/tcp/9000`` of the connection's far end, when the transport says."""
    try:
        endpoint = conn.muxed_conn.get_remote_address()
    except Exception:
        return None
    if not endpoint:
        return None
    host, port = endpoint[0], endpoint[1]
    family = "ip6" if ":" in str(host) else "ip4"
    return f"/{family}/{host}/tcp/{port}"


def count_trio_tasks() -> int:
    """Tasks alive in this trio run (the root task and every nursery's children)."""
    count, stack = 0, [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count
