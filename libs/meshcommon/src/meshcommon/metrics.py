"""Prometheus helpers shared by the services."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from meshcommon.limits import MAX_MESSAGE_TYPE_LABELS

Totals = Mapping[str, float] | Mapping[tuple[str, ...], float] | float


class TotalsCounter(Collector):
    """A counter whose totals are kept by someone else (the libp2p node counts its drops
    in its own thread) and read at scrape time.

    Reading the owner's running totals avoids mirroring them into a second counter with
    delta bookkeeping. With a ``label``, ``read`` returns ``{label value: total}``; without,
    one number; with a tuple of labels, ``{(value, value...): total}``. Totals must only
    grow. Label values in ``always`` are exported from the
    start (0 until counted), so that the first drop is an increase a rule can see.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str | tuple[str, ...] | None,
        read: Callable[[], Totals],
        registry: CollectorRegistry | None = None,
        *,
        always: Iterable[str] | Iterable[tuple[str, ...]] = (),
    ) -> None:
        self._name, self._doc, self._label, self._read = name, documentation, label, read
        self._always: dict[object, float] = dict.fromkeys(always, 0.0)
        if registry is not None:
            registry.register(self)

    def _family(self) -> CounterMetricFamily:
        label = self._label
        labels = list(label) if isinstance(label, tuple) else [label] if label else []
        return CounterMetricFamily(self._name, self._doc, labels=labels)

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        totals = self._read()
        if isinstance(totals, Mapping):
            # dict() copies in one step: the owner may be adding keys in its own thread.
            merged: dict[object, float] = {**self._always, **dict(totals.items())}
            for value, total in sorted(merged.items(), key=lambda kv: str(kv[0])):
                values = list(value) if isinstance(value, tuple) else [value]
                family.add_metric([str(v) for v in values], total)
        else:
            family.add_metric([], totals)
        yield family


class BoundedLabel:
    """The value to use for a label whose values a peer chooses (a gossip message type):
    the first ``limit`` distinct values as they are, every later one as ``other``, so the
    number of series stays bounded whatever peers send."""

    OTHER = "other"

    def __init__(self, limit: int, known: Iterable[str] = ()) -> None:
        self._limit = limit
        self._seen = set(known)
        self._lock = threading.Lock()  # gossip callbacks run in the libp2p thread

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return self.OTHER


class ReceivedMessagesCounter:
    """Valid gossip messages by topic and message type, as a service counts what it
    receives; the type, which the sender chooses, goes through a BoundedLabel."""

    def __init__(self, name: str, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            name,
            "Valid gossip messages, by topic and message type (at most "
            f"{MAX_MESSAGE_TYPE_LABELS} types; later ones are counted as '{BoundedLabel.OTHER}')",
            ["topic", "type"],
            registry=registry,
        )
        self._message_type = BoundedLabel(MAX_MESSAGE_TYPE_LABELS)

    def count(self, topic: str, message_type: str) -> None:
        self.counter.labels(topic=topic, type=self._message_type(message_type)).inc()


class PairTotalsCounter(TotalsCounter):
    """A TotalsCounter with two labels: ``read`` returns ``{(a, b): total}``."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, str],
        read: Callable[[], Mapping[tuple[str, str], float]],
        registry: CollectorRegistry | None = None,
        *,
        always: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._labels = labels
        self._read_pairs = read
        self._always_pairs = dict.fromkeys(always, 0.0)
        super().__init__(name, documentation, None, lambda: 0.0, registry)

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self._name, self._doc, labels=list(self._labels))

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        for (a, b), total in sorted({**self._always_pairs, **dict(self._read_pairs())}.items()):
            family.add_metric([a, b], total)
        yield family


def export_gossip_scoring(
    registry: CollectorRegistry,
    prefix: str,
    read: Callable[[], Mapping[str, float]],
) -> None:
    """GossipSub v1.1 scoring figures of the libp2p node (read at scrape time; ``read``
    returns graylisted_peers, graylistings, graylist_ignored_rpcs, score_gated). Counts,
    not a label per peer: who is graylisted is in ``/api/v1/mesh`` (scoring.graylisted)."""
    Gauge(
        f"{prefix}_gossip_graylisted_peers",
        "Peers below the GossipSub graylist threshold now (their RPCs are ignored)",
        registry=registry,
    ).set_function(lambda: read()["graylisted_peers"])
    TotalsCounter(
        f"{prefix}_gossip_graylistings",
        "Times a peer went below the graylist threshold (invalid messages)",
        None,
        lambda: read()["graylistings"],
        registry,
    )
    TotalsCounter(
        f"{prefix}_gossip_graylist_ignored_rpcs",
        "RPCs ignored because their sender was graylisted",
        None,
        lambda: read()["graylist_ignored_rpcs"],
        registry,
    )
    TotalsCounter(
        f"{prefix}_gossip_score_gated",
        "Messages refused because their forwarder scored below the publish threshold",
        None,
        lambda: read()["score_gated"],
        registry,
    )


def _asyncio_tasks() -> float:
    """Tasks of the running asyncio loop; NaN when read outside it."""
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:
        return math.nan


def export_runtime_metrics(registry: CollectorRegistry, prefix: str) -> None:
    """What a soak watches for leaks, on the service's own registry: the standard
    ``process_*`` series (resident memory, open file descriptors, CPU) and
    ``<prefix>_asyncio_tasks``, read on the event loop at scrape time (the routes serving
    /metrics run there)."""
    ProcessCollector(registry=registry)
    Gauge(
        f"{prefix}_asyncio_tasks", "Tasks alive on the asyncio event loop", registry=registry
    ).set_function(_asyncio_tasks)
