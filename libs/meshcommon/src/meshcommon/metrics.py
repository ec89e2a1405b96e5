"""Prometheus helpers shared by the services."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

Totals = Mapping[str, float] | float


class TotalsCounter(Collector):
    """A counter whose totals are kept by someone else (the libp2p node counts its drops
    in its own thread) and read at scrape time.

    Reading the owner's running totals avoids mirroring them into a second counter with
    delta bookkeeping. With a ``label``, ``read`` returns ``{label value: total}``; without,
    one number. Totals must only grow.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str | None,
        read: Callable[[], Totals],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._name, self._doc, self._label, self._read = name, documentation, label, read
        if registry is not None:
            registry.register(self)

    def _family(self) -> CounterMetricFamily:
        labels = [self._label] if self._label else []
        return CounterMetricFamily(self._name, self._doc, labels=labels)

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        totals = self._read()
        if isinstance(totals, Mapping):
            # dict() copies in one step: the owner may be adding keys in its own thread.
            for value, total in sorted(dict(totals).items()):
                family.add_metric([value], total)
        else:
            family.add_metric([], totals)
        yield family


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
