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

import math
from collections.abc import Mapping, Sequence

from ..errors import UsageError
from ..result import Result
from ._counted import COUNT_DRIFT, compare_counts, counted_changes, counted_elsewhere
from ._matching import context, matched
from ._model import (
    ALPHA,
    DEFAULT_THRESHOLDS,
    METRICS,
    MIN_PROCESSES,
    CellComparison,
    Comparison,
    MetricChange,
    Threshold,
    parse_thresholds,
)
from ._sampled import judge_sampled, per_process, sample_metric, sampled_changes

__all__ = [
    "ALPHA", "COUNT_DRIFT", "DEFAULT_THRESHOLDS", "METRICS", "MIN_PROCESSES", "CellComparison", "Comparison",
    "MetricChange", "Threshold", "compare_counts", "compare_results", "judge_sampled", "parse_thresholds",
    "per_process", "sample_metric",
]  # fmt: skip


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
    single, normalize = context(base, cand, out, allow_incomplete=allow_incomplete, normalize=normalize)
    pairs = matched(base, cand, out, single=single, allow_missing=allow_missing)
    changes = sampled_changes(base, cand, pairs, out, metrics, normalize)
    elsewhere = counted_elsewhere(base, cand, out)
    ratios = []
    for (b, c), sampled in zip(pairs, changes, strict=True):
        cc = CellComparison(b, c, [*sampled, *counted_changes(b, c, metrics, thresholds, elsewhere)])
        out.cells.append(cc)
        time = next((m for m in cc.changes if m.metric == "time"), None)
        if time is not None and time.ratio:
            ratios.append(time.ratio)
    if ratios:
        out.geomean_time = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    return out
