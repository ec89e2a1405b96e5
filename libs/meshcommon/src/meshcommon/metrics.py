"""Prometheus helpers shared by the services."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry
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
