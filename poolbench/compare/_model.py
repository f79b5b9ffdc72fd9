"""What a comparison says: thresholds, each metric's change, each cell's and the whole gate's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..result import Cell

ALPHA = 0.05
"""The family-wise error rate of one compare: the chance of any false alarm among all its tests."""
MIN_PROCESSES = 3
"""With fewer than 3 worker processes a side, the spread between processes is not known well
enough to call a difference (files from ``--quick`` before format 2 had 2)."""
METRICS = ("time", "speedup", "allocs", "bytes", "gc", "instructions", "cycles")


@dataclass(frozen=True)
class Threshold:
    value: float
    relative: bool
    floor: float = 0.0
    """A relative threshold never allows less than this (in the metric's unit)."""

    def __str__(self) -> str:
        return f"{self.value:.0%}" if self.relative else f"{self.value:g}"

    def bar(self, base: float) -> float:
        """The change (in the metric's unit) this threshold allows from ``base``."""
        return max(abs(base) * self.value, self.floor) if self.relative else self.value


DEFAULT_THRESHOLDS: dict[str, Threshold] = {
    "time": Threshold(0.10, True),
    "speedup": Threshold(0.10, True),
    "allocs": Threshold(0.5, False),
    "bytes": Threshold(0.05, True),
    "gc": Threshold(0.25, True, floor=0.25),
    "instructions": Threshold(0.01, True),
    "cycles": Threshold(0.01, True),
}
"""Chosen with ``benchmarks/gate.py`` (figures in the README): time and speedup at 10% kept A/A
false alarms at most 1 in 20 on this machine; allocs at 0.5 per op catches one extra allocation
and ignores rounding; gc rates under 0.25 per 1k ops are a collection or two over a whole pass,
so a change smaller than that is never a regression."""


def parse_thresholds(items: Sequence[str]) -> dict[str, Threshold]:
    """``["time=5%", "allocs=0"]`` over the defaults; time and speedup are always relative."""
    out = dict(DEFAULT_THRESHOLDS)
    for item in items:
        metric, sep, text = item.partition("=")
        metric, text = metric.strip(), text.strip()
        if not sep or metric not in METRICS:
            raise UsageError(
                f"bad threshold {item!r}",
                hint=f"write METRIC=VALUE with METRIC one of {', '.join(METRICS)} (e.g. time=5%, allocs=0)",
            )
        relative = text.endswith("%")
        try:
            value = float(text.rstrip("%")) / (100 if relative else 1)
        except ValueError:
            raise UsageError(f"bad threshold value {text!r} for {metric}", hint="e.g. 5% or 0.5") from None
        if not math.isfinite(value) or value < 0:
            raise UsageError(f"threshold for {metric} must be a finite number >= 0, not {text!r}")
        out[metric] = Threshold(value, relative or metric in ("time", "speedup"), out[metric].floor)
    return out


@dataclass(frozen=True)
class MetricChange:
    metric: str
    base: float | None
    cand: float | None
    ratio: float | None
    """cand / base (time, speedup, and relative views of the others)."""
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    """Adjusted for every sampled test of the compare (Holm-Bonferroni)."""
    mark: str = "~"  # faster | slower | ~ (time, speedup); more | fewer | = (counts)
    regression: bool = False
    note: str = ""
    detectable: float | None = None
    """The smallest relative change this pair of runs could have called significant, at the
    strictest adjusted alpha (alpha / number of tests); a pass says nothing of smaller changes."""


@dataclass(frozen=True)
class CellComparison:
    base: Cell
    cand: Cell
    changes: list[MetricChange]

    @property
    def label(self) -> str:
        return self.base.label

    @property
    def regression(self) -> bool:
        return any(c.regression for c in self.changes)


@dataclass
class Comparison:
    cells: list[CellComparison] = field(default_factory=list)
    only_base: list[Cell] = field(default_factory=list)
    only_cand: list[Cell] = field(default_factory=list)
    failed: list[tuple[Cell, str]] = field(default_factory=list)
    """Cells not compared because they did not measure in the base (or in neither)."""
    broken: list[tuple[Cell, str]] = field(default_factory=list)
    """Cells that measured in the base and failed, or are missing, in the candidate: regressions."""
    incomplete: str = ""
    """Why the candidate's file cannot pass: an interrupted run (empty when it can)."""
    env_differences: list[tuple[str, Any, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    geomean_time: float | None = None
    tests: int = 0
    """How many sampled tests the p-values were adjusted over."""

    @property
    def regressions(self) -> list[tuple[CellComparison, MetricChange]]:
        return [(c, m) for c in self.cells for m in c.changes if m.regression]

    @property
    def failing(self) -> bool:
        """Whether the gate fails: a regression, a cell the candidate broke or lost, or a
        candidate from an interrupted run."""
        return bool(self.regressions or self.broken or self.incomplete)
