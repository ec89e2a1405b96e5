"""The libp2p node's own counters as Prometheus metrics: the same names, under each
service's prefix (``chorus_agent_``, ``hmmm_``), read at scrape time from ``NodeCounters``
(the node adds to them in its trio thread)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from meshcommon.kademlia import MALFORMED_REASONS, QUERY_RESULTS, DhtCounters
from meshcommon.metrics import TotalsCounter, export_gossip_scoring
from meshcommon.p2p.types import (
    IDONTWANT_KINDS,
    PNET_DIRECTIONS,
    PNET_REFUSAL_REASONS,
    STALE_REASONS,
    NodeCounters,
)
from meshcommon.topics import ALL_TOPICS


def export_node_counters(registry: CollectorRegistry, prefix: str, counters: NodeCounters) -> None:
    """Everything the node drops, refuses or fails to process, as ``<prefix>_*`` totals;
    the known label values start at 0, so a first drop is an increase."""
    TotalsCounter(
        f"{prefix}_subscription_dropped",
        "Messages dropped because a subscription queue was full",
        "topic",
        lambda: counters.dropped_by_topic,
        registry,
        always=ALL_TOPICS,
    )
    TotalsCounter(
        f"{prefix}_outbound_dropped",
        "Messages GossipSub dropped because a peer's outbound queue was full",
        "reason",
        lambda: counters.outbound_dropped,
        registry,
    )
    export_gossip_scoring(
        registry,
        prefix,
        lambda: {
            "graylisted_peers": counters.graylisted_peers,
            "graylistings": counters.graylistings,
            "graylist_ignored_rpcs": counters.graylist_ignored_rpcs,
            "score_gated": counters.score_gated,
        },
    )
    TotalsCounter(
        f"{prefix}_pnet_refused",
        "Connections the libp2p private network refused before multistream, by direction "
        "and reason: wrong_key (another swarm.key), no_key (a peer without one), closed, "
        "timeout",
        ("direction", "reason"),
        # Mapping's key type is invariant: (direction, reason) pairs are the tuple labels.
        lambda: cast(Mapping[tuple[str, ...], float], counters.pnet_refused),
        registry,
        always=[(d, reason) for d in PNET_DIRECTIONS for reason in PNET_REFUSAL_REASONS],
    )
    TotalsCounter(
        f"{prefix}_idontwant",
        "GossipSub v1.2 IDONTWANT, in message IDs: sent (announced to a mesh peer), received "
        "(kept from a peer), honoured (messages not sent to a peer that said it had them), "
        "over_budget (a peer's IDs beyond the per-heartbeat budget, ignored), heard (messages "
        "not sent to a peer because it had sent them to us)",
        "kind",
        lambda: counters.idontwant,
        registry,
        always=IDONTWANT_KINDS,
    )
    TotalsCounter(
        f"{prefix}_consumer_errors",
        "Messages whose processing raised (logged with a traceback, rate-limited)",
        "topic",
        lambda: counters.consumer_errors,
        registry,
        always=ALL_TOPICS,
    )
    TotalsCounter(
        f"{prefix}_stale_connections_closed",
        "Connections closed because the peer stopped answering (a host gone without "
        "FIN/RST), by reason: ping_failures (pings failed in a row), replaced (a newer "
        "connection from the peer came and the old one did not answer a ping)",
        "reason",
        lambda: counters.stale_closed,
        registry,
        always=STALE_REASONS,
    )
    TotalsCounter(
        f"{prefix}_stale_checks_dropped",
        "Connection checks not done because their queue was full",
        None,
        lambda: counters.stale_dropped_jobs,
        registry,
    )
    TotalsCounter(
        f"{prefix}_pubsub_streams_moved",
        "Pubsub streams to a peer moved from its dead connection to its newer one",
        None,
        lambda: counters.pubsub_streams_moved,
        registry,
    )
    export_dht(registry, prefix, counters.dht)


class _DhtGauges(Collector):
    def __init__(self, prefix: str, counters: DhtCounters) -> None:
        self.prefix, self.counters = prefix, counters

    def collect(self) -> list[GaugeMetricFamily]:
        c = self.counters
        return [
            GaugeMetricFamily(
                f"{self.prefix}_dht_routing_table_peers",
                "Peers in the Kademlia routing table (k-buckets, capped)",
                value=c.table_peers,
            ),
            GaugeMetricFamily(
                f"{self.prefix}_dht_found_peers",
                "Peers the DHT found and hands to the peering loop (capped, newest kept)",
                value=c.found_peers,
            ),
        ]


def export_dht(registry: CollectorRegistry, prefix: str, counters: DhtCounters) -> None:
    """The Kademlia DHT's work and refusals (``meshcommon.p2p.dht``)."""
    TotalsCounter(
        f"{prefix}_dht_queries",
        "FIND_NODE queries this peer sent, by result: ok, unsupported (no DHT there), "
        "unreachable, malformed (answer refused), timeout",
        "result",
        lambda: counters.queries,
        registry,
        always=QUERY_RESULTS,
    )
    TotalsCounter(
        f"{prefix}_dht_requests",
        "DHT requests this peer answered, by message type",
        "type",
        lambda: counters.requests,
        registry,
    )
    TotalsCounter(
        f"{prefix}_dht_malformed",
        "DHT messages refused or trimmed, by reason (too_large, unparsable, bad_key, "
        "unsupported_type, too_many_peers, too_many_addrs, ...)",
        "reason",
        lambda: counters.malformed,
        registry,
        always=MALFORMED_REASONS,
    )
    TotalsCounter(
        f"{prefix}_dht_inbound_refused",
        "DHT streams reset because the budget of streams answered at once was reached",
        None,
        lambda: counters.inbound_refused,
        registry,
    )
    TotalsCounter(
        f"{prefix}_dht_lookups",
        "Iterative lookups (random walks) run",
        None,
        lambda: counters.lookups,
        registry,
    )
    TotalsCounter(
        f"{prefix}_dht_query_dials",
        "Connections a lookup opened only to ask a peer, and closed after the answer",
        None,
        lambda: counters.walks_dialled,
        registry,
    )
    registry.register(_DhtGauges(prefix, counters))
