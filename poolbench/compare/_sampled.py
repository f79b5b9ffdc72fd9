"""The sampled metrics (time, speedup): one figure per worker process, Welch's test on their
logarithms, one Holm correction over every test of the comparison."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ..result import Cell, Result
from ..stats import Shift, holm, log_shift
from ..verdict import Looks, looks_of, speedup
from ._model import ALPHA, MIN_PROCESSES, Comparison, MetricChange, Threshold


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


def sampled_changes(base: Result, cand: Result, pairs: Sequence[tuple[Cell, Cell]], out: Comparison,
                     metrics: Sequence[str], normalize: bool) -> list[list[MetricChange]]:  # fmt: skip
    """The sampled metrics (time, speedup) of each pair, judged with one Holm correction over
    every test of the comparison (``out.tests`` says how many)."""
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
        threshold = out.thresholds[figures.metric]
        changes[i].append(judge_sampled(figures, p, threshold, out.tests, higher_is_worse=higher_is_worse))
    return changes
