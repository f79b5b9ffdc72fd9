"""Comparing two results: the CI regression gate, as a function of two loaded results.

Built around what was measured on shared 2-core runners: identical runs differ 1.3-1.8x in
absolute time between processes, so

* **time** is compared after dividing each value by the reference workload timed in the same
  round of the same worker (``measure.reference_work``): what remains is how much slower the
  operation got *relative to this machine's speed at that moment*;
* **speedup** (pooled cells) compares the same-round ``none / pool`` ratios, which need no
  normalizing at all;
* **allocs**, **bytes** (allocations and bytes per op, counted by memray) and **gc** (collections
  per 1k ops, single-thread cells) are deterministic up to rounding, and gated on their own
  thresholds: the reliable signal on a noisy runner.

A time or speedup change is a **regression** only when it is significant (Mann-Whitney U,
two-sided, alpha 0.05, scipy; the benchstat method) *and* larger than its threshold.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ResultFileError, UsageError
from .result import Cell, Result
from .stats import mann_whitney, ratio_ci

ALPHA = 0.05
MIN_SAMPLES = 4
"""benchstat's floor: with fewer than 4 values a side, no difference can be called."""
METRICS = ("time", "speedup", "allocs", "bytes", "gc")
ENV_KEYS = (
    "python_version",
    "python_implementation",
    "gil_enabled",
    "cpu_model",
    "cpu_count",
    "poolbench_version",
)


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
    mark: str = "~"  # faster | slower | ~ (time, speedup); more | fewer | = (counts)
    regression: bool = False
    note: str = ""


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
    env_differences: list[tuple[str, Any, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    geomean_time: float | None = None

    @property
    def regressions(self) -> list[tuple[CellComparison, MetricChange]]:
        return [(c, m) for c in self.cells for m in c.changes if m.regression]


def compare_samples(
    metric: str, base: Sequence[float], cand: Sequence[float], threshold: Threshold, *, higher_is_worse: bool
) -> MetricChange:
    """A sampled metric (time, speedup): significance, size, and whether it is a regression."""
    if not base or not cand:
        return MetricChange(metric, None, None, None, note="no values")
    b, c = statistics.median(base), statistics.median(cand)
    ratio = c / b if b else None
    if len(base) < MIN_SAMPLES or len(cand) < MIN_SAMPLES:
        return MetricChange(metric, b, c, ratio, note=f"too few values (< {MIN_SAMPLES}) to tell")
    p = mann_whitney(base, cand)
    lo, hi = ratio_ci(base, cand)
    mark = "~"
    regression = False
    if p < ALPHA and ratio is not None:
        worse = ratio > 1 if higher_is_worse else ratio < 1
        if higher_is_worse:
            mark = "slower" if ratio > 1 else "faster"
        else:
            mark = "slower" if ratio < 1 else "faster"
        size = ratio - 1 if higher_is_worse else 1 / ratio - 1
        regression = worse and size > threshold.value
    return MetricChange(metric, b, c, ratio, lo, hi, p, mark, regression)


def compare_counts(
    metric: str, base: Sequence[float], cand: Sequence[float], threshold: Threshold
) -> MetricChange:
    """A deterministic metric: per-process values; a change beyond both the threshold and the
    spread seen inside either file is real (rounding and thread scheduling stay below it)."""
    if not base or not cand:
        return MetricChange(metric, None, None, None, note="not counted")
    b, c = sum(base) / len(base), sum(cand) / len(cand)
    noise = max(max(base) - min(base), max(cand) - min(cand))
    delta = c - b
    allowed = max(threshold.bar(b), 2 * noise)
    ratio = c / b if b else None
    if abs(delta) <= max(noise, 1e-9 + 0.005 * abs(b)):
        mark = "="
    else:
        mark = "more" if delta > 0 else "fewer"
    note = f"spread {noise:.2g}" if noise else ""
    return MetricChange(metric, b, c, ratio, mark=mark, regression=delta > allowed, note=note)


def _gc_rate(cell: Cell) -> list[float]:
    gc = cell.gc
    if gc is None or gc.ops <= 0 or cell.threads != 1:
        return []
    return [1000 * sum(gc.collections) / gc.ops]


def compare_cells(
    base: Cell, cand: Cell, thresholds: Mapping[str, Threshold], metrics: Sequence[str]
) -> CellComparison:
    changes = []
    if "time" in metrics:
        normalized = bool(base.normalized and cand.normalized)
        b_values = base.normalized if normalized else base.values
        c_values = cand.normalized if normalized else cand.values
        change = compare_samples("time", b_values, c_values, thresholds["time"], higher_is_worse=True)
        # Show ns per op; the change, interval and verdict come from the normalized values.
        change = dataclasses.replace(
            change,
            base=statistics.median(base.values) if base.values else None,
            cand=statistics.median(cand.values) if cand.values else None,
            note=change.note or ("" if normalized else "not normalized: no reference timings"),
        )
        changes.append(change)
    if "speedup" in metrics and base.pool != "none":
        changes.append(
            compare_samples("speedup", base.ratios, cand.ratios, thresholds["speedup"], higher_is_worse=False)
        )
    per_run: dict[str, tuple[list[float], list[float]]] = {
        "allocs": (
            [r.allocs_per_op for r in base.runs if r.allocs_per_op is not None],
            [r.allocs_per_op for r in cand.runs if r.allocs_per_op is not None],
        ),
        "bytes": (
            [r.bytes_per_op for r in base.runs if r.bytes_per_op is not None],
            [r.bytes_per_op for r in cand.runs if r.bytes_per_op is not None],
        ),
        "gc": (_gc_rate(base), _gc_rate(cand)),
    }
    for metric, (b, c) in per_run.items():
        if metric in metrics and (b or c):
            changes.append(compare_counts(metric, b, c, thresholds[metric]))
    return CellComparison(base, cand, changes)


def compare_results(
    base: Result,
    cand: Result,
    *,
    thresholds: Mapping[str, Threshold] | None = None,
    metrics: Sequence[str] = METRICS,
) -> Comparison:
    """Match cells by (scenario, pool, threads, params) and compare each metric."""
    thresholds = dict(thresholds or DEFAULT_THRESHOLDS)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric {unknown[0]!r}", hint=f"metrics: {', '.join(METRICS)}")
    out = Comparison(thresholds=thresholds)
    for key in ENV_KEYS:
        b, c = base.metadata.get(key), cand.metadata.get(key)
        if b != c:
            out.env_differences.append((key, b, c))
    if base.config.get("mode") != cand.config.get("mode"):
        out.warnings.append(f"different modes: {base.config.get('mode')} vs {cand.config.get('mode')}")
    for name, result in (("base", base), ("candidate", cand)):
        if not result.complete:
            out.warnings.append(f"the {name} file is incomplete: only its finished cells are compared")
    cand_cells = {c.key: c for c in cand.cells}
    base_keys = {c.key for c in base.cells}
    ratios = []
    for b in base.cells:
        c = cand_cells.get(b.key)
        if c is None:
            out.only_base.append(b)
            continue
        if b.status != "ok" or c.status != "ok":
            which, bad = ("base", b) if b.status != "ok" else ("candidate", c)
            out.failed.append((b, f"{bad.status} in the {which}: {bad.error}"))
            continue
        cc = compare_cells(b, c, thresholds, metrics)
        out.cells.append(cc)
        time = next((m for m in cc.changes if m.metric == "time"), None)
        if time is not None and time.ratio:
            ratios.append(time.ratio)
    out.only_cand = [c for c in cand.cells if c.key not in base_keys]
    if not out.cells and not out.failed:
        raise ResultFileError(
            "nothing to compare: the two files have no cell in common",
            hint="compare results of the same scenarios, pools, threads and parameters",
        )
    if ratios:
        out.geomean_time = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    return out
