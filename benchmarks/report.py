"""The benchmark table: one row per figure, its runs, its median and its target."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Row:
    key: str
    what: str
    unit: str
    target: float | None  # None: a figure shown for context, without a target
    lower_is_better: bool = True
    samples: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, value: float) -> None:
        self.samples.append(value)

    @property
    def median(self) -> float | None:
        finite = [s for s in self.samples if not math.isnan(s)]
        return statistics.median(finite) if finite else None

    @property
    def met(self) -> bool | None:
        if self.target is None or self.median is None:
            return None
        return self.median <= self.target if self.lower_is_better else self.median >= self.target

    def cells(self, fmt: Callable[[float], str]) -> list[str]:
        med = self.median
        spread = (
            f"{fmt(min(self.samples))}–{fmt(max(self.samples))}" if len(self.samples) > 1 else ""
        )
        sign = "≤" if self.lower_is_better else "≥"
        target = f"{sign} {fmt(self.target)}" if self.target is not None else ""
        verdict = {True: "yes", False: "NO", None: ""}[self.met]
        return [
            self.what,
            "—" if med is None else fmt(med),
            spread,
            self.unit,
            target,
            verdict,
            f"{len(self.samples)}",
            self.note,
        ]


def number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render(rows: list[Row], before: dict[str, Row] | None = None) -> str:
    """The table; with ``before`` (the same rows measured on another checkout in the same
    sitting), a "before" column of its medians and ranges left of this one's."""
    header = ["what", "median", "min–max", "unit", "target", "met", "runs", "note"]
    body = [r.cells(number) for r in rows]
    if before is not None:
        header[1:1] = ["before", "before min–max"]
        header[3:5] = ["after", "after min–max"]
        for r, b in zip(rows, body, strict=True):
            old = before.get(r.key)
            cells = old.cells(number)[1:3] if old is not None and old.samples else ["—", ""]
            b[1:1] = cells
    return _table(header, body)


def _table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for b in body:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) + " |")
    return "\n".join(lines)
