"""Comparing two results: the CI regression gate, as a function of two loaded results.

Built around what was measured on shared 2-core runners: identical runs differ 1.3-1.8x in
absolute time between processes, and values of one process are not independent samples (they
share its heap layout, its calibration and its moment). So:

* **the unit of replication is the worker process**: each process contributes one figure per
  metric (the median of its values), and significance comes from how those figures vary between
  processes (Welch's t-test on their logarithms, :func:`~poolbench.stats.log_shift`);
* **time** is each value divided by the reference workload timed in the same round of the same
  worker, on the cell's own threads (``timing.reference_work``): what remains is how much slower
  the operation got *relative to this machine's speed at that moment*;
* **speedup** (pooled cells) compares the same-round ``none / pool`` ratios, which need no
  normalizing at all;
* **false alarms are controlled over the whole compare**: the p-values of every (cell, metric)
  test are adjusted together (Holm-Bonferroni, :func:`~poolbench.stats.holm`), and the printed
  ones are the adjusted ones; with 24 cells x 2 sampled metrics, unadjusted tests at 0.05 would
  cry wolf in most identical runs;
* **allocs**, **bytes** (allocations and bytes per op, counted by memray) and **gc** (collections
  per 1k ops, single-thread cells) are deterministic, and gated on their own thresholds: the
  reliable signal on a noisy runner.

A time or speedup change is a **regression** only when it is significant after adjustment *and*
larger than its threshold. Each also carries the smallest change the pair of runs could have
detected (``detectable``), so a pass is read with its power.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .env import ENV_KEYS
from .errors import ResultFileError, UsageError
from .result import Cell, Result
from .stats import Shift, holm, log_shift
from .verdict import Looks, looks_of, speedup

ALPHA = 0.05
"""The family-wise error rate of one compare: the chance of any false alarm among all its tests."""
MIN_PROCESSES = 3
"""With fewer than 3 worker processes a side, the spread between processes is not known well
enough to call a difference (files from ``--quick`` before format 2 had 2)."""
METRICS = ("time", "speedup", "allocs", "bytes", "gc")


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


@dataclass(frozen=True)
class _Sampled:
    """A sampled metric's figures before the p-values of the whole compare are adjusted."""

    metric: str
    base: float | None
    cand: float | None
    shift: Shift | None
    note: str = ""


def per_process(runs: Sequence[Sequence[float]]) -> list[float]:
    """One figure per worker process: the median of its values."""
    return [statistics.median(r) for r in runs if r]


def sample_metric(metric: str, base: Sequence[Sequence[float]], cand: Sequence[Sequence[float]]) -> _Sampled:
    """Per-process medians of both sides and the shift between them (see :func:`log_shift`)."""
    b, c = per_process(base), per_process(cand)
    if not b or not c:
        return _Sampled(metric, None, None, None, "no values")
    b_med, c_med = statistics.median(b), statistics.median(c)
    if len(b) < MIN_PROCESSES or len(c) < MIN_PROCESSES:
        return _Sampled(metric, b_med, c_med, None, f"too few processes (< {MIN_PROCESSES} a side) to tell")
    if min(b) <= 0 or min(c) <= 0:
        return _Sampled(metric, b_med, c_med, None, "values at or below zero")
    return _Sampled(metric, b_med, c_med, log_shift(b, c))


def judge_sampled(
    s: _Sampled, p_adjusted: float | None, threshold: Threshold, tests: int, *, higher_is_worse: bool
) -> MetricChange:
    """A sampled metric's verdict: a regression when significant after adjustment and beyond its
    threshold."""
    if s.shift is None or p_adjusted is None:
        ratio = s.cand / s.base if s.base and s.cand is not None else None
        return MetricChange(s.metric, s.base, s.cand, ratio, note=s.note)
    shift = s.shift
    ratio = shift.ratio
    mark = "~"
    regression = False
    if p_adjusted < ALPHA:
        faster = ratio < 1 if higher_is_worse else ratio > 1
        mark = "faster" if faster else "slower"
        size = ratio - 1 if higher_is_worse else 1 / ratio - 1
        regression = not faster and size > threshold.value
    return MetricChange(
        s.metric, s.base, s.cand, ratio, shift.ci_low, shift.ci_high, p_adjusted, mark, regression,
        s.note, shift.detectable(ALPHA / max(tests, 1)),
    )  # fmt: skip


COUNT_DRIFT = 0.0025
"""A count may move by 0.25% between identical runs however alike its processes are: sqlite's
connect (290 allocations an op) read 289.45 and 290.02 in two runs whose processes agreed within
0.16. One allocation more still clears it up to 400 allocations an op."""


def compare_counts(
    metric: str, base: Sequence[float], cand: Sequence[float], threshold: Threshold, resolution: float = 0.0
) -> MetricChange:
    """A deterministic metric: one value per counting process. A change is a regression when the
    increase clears the threshold, twice the spread between processes inside either file (a count
    that moves with thread scheduling is gated with that spread, never as exact), twice the
    metric's ``resolution`` (one collection over a pass, for GC rates) and :data:`COUNT_DRIFT`."""
    if not base or not cand:
        side = "either file" if not base and not cand else "the base" if not base else "the candidate"
        b_only = statistics.fmean(base) if base else None
        c_only = statistics.fmean(cand) if cand else None
        return MetricChange(metric, b_only, c_only, None, note=f"not counted in {side}")
    b, c = statistics.fmean(base), statistics.fmean(cand)
    noise = max(max(base) - min(base), max(cand) - min(cand))
    delta = c - b
    allowed = max(threshold.bar(b), 2 * noise, 2 * resolution, COUNT_DRIFT * abs(b))
    ratio = c / b if b else None
    if abs(delta) <= max(noise, resolution, 1e-9 + 0.005 * abs(b)):
        mark = "="
    else:
        mark = "more" if delta > 0 else "fewer"
    notes = []
    if noise:
        notes.append(f"processes disagree by {noise:.2g}")
    note = "; ".join(notes)
    return MetricChange(metric, b, c, ratio, mark=mark, regression=delta > allowed, note=note)


def _gc_rate(cell: Cell) -> tuple[list[float], float]:
    """Collections per 1k ops (single-thread cells only: with threads, when a collection falls
    depends on scheduling), and the rate one collection more or less would move it by."""
    gc = cell.gc
    if gc is None or gc.ops <= 0 or cell.threads != 1:
        return [], 0.0
    processes = max(1, gc.processes or len(cell.runs))
    return [1000 * sum(gc.collections) / gc.ops], 1000 * processes / gc.ops


def _cpus(result: Result) -> int:
    count = result.metadata.get("cpu_count")
    return count if isinstance(count, int) and count > 0 else 1 << 30


def _untested_if_busy(figures: _Sampled, cell: Cell, cpus: int) -> _Sampled:
    """Time of a cell that keeps every CPU busy, and speedup of one with more threads than CPUs,
    are shown, not tested: the host's other work (the run's own parent, other tenants) then
    preempts the cell's threads, and normalizing by the reference workload cancels a machine
    that is slower throughout, not a preemption that falls on one value and not the next.
    Identical quick runs on this 2-core VM read 4-thread cells up to 1.5x apart in time and
    0.39x in speedup (4 of 20 A/A compares failed on them alone), 2-thread cells up to 1.29x
    apart in normalized time (worker-tasks ``none``: 2 of 20 A/A compares failed on 2-thread
    time, none on 2-thread speedup, a ratio of values taken moments apart in one process), where
    single-thread cells failed none."""
    busy = cell.threads >= cpus if figures.metric == "time" else cell.threads > cpus
    if not busy or figures.shift is None:
        return figures
    note = "; ".join(n for n in (figures.note, f"not tested: {cell.threads} threads on {cpus} CPUs") if n)
    return dataclasses.replace(figures, shift=None, note=note)


def _verdicts(base: Cell, cand: Cell, base_looks: Looks, cand_looks: Looks) -> str:
    """``verdict wins -> inconclusive`` where the run's own verdicts of a pooled cell differ."""
    if not base.ratios_by_run or not cand.ratios_by_run:
        return ""
    before = speedup(base.ratios_by_run, base_looks).verdict
    after = speedup(cand.ratios_by_run, cand_looks).verdict
    return "" if before == after else f"verdict {before} -> {after}"


def _time_runs(cell: Cell, normalize: bool) -> list[list[float]]:
    if normalize:
        return cell.normalized_by_run
    return cell.values_by_run


def compare_results(
    base: Result,
    cand: Result,
    *,
    thresholds: Mapping[str, Threshold] | None = None,
    metrics: Sequence[str] = METRICS,
    allow_missing: bool = False,
    allow_incomplete: bool = False,
    normalize: bool = True,
) -> Comparison:
    """Match cells by (scenario, pool, threads, params, interpreter) and compare each metric.

    A cell that measured in the base but failed (or was not measured) in the candidate is a
    regression; so is one missing from the candidate, unless ``allow_missing`` (a deliberately
    narrowed matrix). A candidate from an interrupted run fails the gate, unless
    ``allow_incomplete``: its cells may rest on one or two processes, too few to test, and so
    pass whatever they hold. ``normalize=False`` compares raw ns/op (the gate study's control).

    Two files of one interpreter each are matched without it: a GIL file against a free-threaded
    one says, cell by cell, what changing the interpreter did. Time is then compared in ns/op, not
    normalized: the reference workload runs on the interpreter too, so dividing by it would hide
    the very change being asked about.
    """
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
    if not base.complete:
        out.warnings.append("the base file is incomplete: only its finished cells are compared")
    if not cand.complete:
        if allow_incomplete:
            out.warnings.append("the candidate file is incomplete: only its finished cells are compared")
        else:
            out.incomplete = (
                "the candidate file is incomplete (an interrupted run, or one still going): "
                "the gate fails (--allow-incomplete compares its finished cells)"
            )
    single = len(base.pythons) == 1 and len(cand.pythons) == 1
    if single and base.pythons != cand.pythons:
        normalize = False
        out.warnings.append(
            f"different interpreters ({base.pythons[0]} -> {cand.pythons[0]}): cells matched across them, "
            "time compared in ns/op (not normalized: the reference workload changes with the interpreter)"
        )

    def match_key(result: Result, cell: Cell) -> tuple[object, ...]:
        return cell.key[:4] if single else (*cell.key[:4], result.python_of(cell))

    cand_cells = {match_key(cand, c): c for c in cand.cells}
    base_keys = {match_key(base, c) for c in base.cells}
    pairs: list[tuple[Cell, Cell]] = []
    for b in base.cells:
        c = cand_cells.get(match_key(base, b))
        if b.status != "ok":
            why = f"{b.status} in the base" + (f": {b.error}" if b.error else "")
            out.failed.append((b, why))
        elif c is None:
            if allow_missing:
                out.only_base.append(b)
            else:
                out.broken.append(
                    (b, "missing from the candidate (--allow-missing if the matrix was narrowed on purpose)")
                )
        elif c.status != "ok":
            why = f"{c.status} in the candidate" + (f": {c.error}" if c.error else "")
            out.broken.append((b, why))
        else:
            pairs.append((b, c))
    out.only_cand = [c for c in cand.cells if match_key(cand, c) not in base_keys]
    if not base_keys & set(cand_cells) and (cand_cells or not out.broken):
        raise ResultFileError(
            "nothing to compare: the two files have no measured cell in common",
            hint="compare results of the same scenarios, pools, threads and parameters",
        )

    sampled: list[tuple[int, _Sampled, bool]] = []  # (pair index, figures, higher is worse)
    base_looks, cand_looks = looks_of(base.config.get("settings")), looks_of(cand.config.get("settings"))
    cpus = min(_cpus(base), _cpus(cand))
    for i, (b, c) in enumerate(pairs):
        if "time" in metrics:
            normalized = normalize and bool(b.normalized and c.normalized)
            figures = sample_metric("time", _time_runs(b, normalized), _time_runs(c, normalized))
            note = figures.note or ("" if normalized else "not normalized")
            # Show ns per op; the change, interval and verdict come from the normalized values.
            raw_b, raw_c = per_process(b.values_by_run), per_process(c.values_by_run)
            figures = dataclasses.replace(
                figures,
                base=statistics.median(raw_b) if raw_b else None,
                cand=statistics.median(raw_c) if raw_c else None,
                note=note,
            )
            sampled.append((i, _untested_if_busy(figures, b, cpus), True))
        if "speedup" in metrics and b.pool != "none":
            figures = sample_metric("speedup", b.ratios_by_run, c.ratios_by_run)
            said = _verdicts(b, c, base_looks, cand_looks)
            note = "; ".join(n for n in (figures.note, said) if n)
            figures = dataclasses.replace(figures, note=note)
            sampled.append((i, _untested_if_busy(figures, b, cpus), False))
    tested = [s.shift.p_value for _, s, _ in sampled if s.shift is not None]
    out.tests = len(tested)
    adjusted = iter(holm(tested))
    changes: list[list[MetricChange]] = [[] for _ in pairs]
    for i, figures, higher_is_worse in sampled:
        p = next(adjusted) if figures.shift is not None else None
        threshold = thresholds[figures.metric]
        changes[i].append(judge_sampled(figures, p, threshold, out.tests, higher_is_worse=higher_is_worse))
    ratios = []
    for i, (b, c) in enumerate(pairs):
        bk, ck = b.counted, c.counted
        counted: dict[str, tuple[list[float], list[float], float]] = {
            "allocs": ([k.allocs_per_op for k in bk], [k.allocs_per_op for k in ck], 0.0),
            "bytes": ([k.bytes_per_op for k in bk], [k.bytes_per_op for k in ck], 0.0),
        }
        (gb, rb), (gcand, rc) = _gc_rate(b), _gc_rate(c)
        counted["gc"] = (gb, gcand, max(rb, rc))
        for metric, (bv, cv, resolution) in counted.items():
            if metric in metrics and (bv or cv):
                changes[i].append(compare_counts(metric, bv, cv, thresholds[metric], resolution))
        cc = CellComparison(b, c, changes[i])
        out.cells.append(cc)
        time = next((m for m in cc.changes if m.metric == "time"), None)
        if time is not None and time.ratio:
            ratios.append(time.ratio)
    if ratios:
        out.geomean_time = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    return out
