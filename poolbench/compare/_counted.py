"""The counted metrics (allocations and bytes per op, GC collections per 1k ops): deterministic,
one value per counting process, gated on their own thresholds."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..instructions import figures
from ..result import Cell, Result
from ._model import Comparison, MetricChange, Threshold

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
    # The smallest increase this gate fails, as a fraction: what a pass can vouch for.
    detectable = allowed / abs(b) if b else None
    return MetricChange(
        metric, b, c, ratio, mark=mark, regression=delta > allowed, note=note, detectable=detectable
    )


def _gc_rate(cell: Cell) -> tuple[list[float], float]:
    """Collections per 1k ops (single-thread cells only: with threads, when a collection falls
    depends on scheduling), and the rate one collection more or less would move it by."""
    gc = cell.gc
    if gc is None or gc.ops <= 0 or cell.threads != 1:
        return [], 0.0
    processes = max(1, gc.processes or len(cell.runs))
    return [1000 * sum(gc.collections) / gc.ops], 1000 * processes / gc.ops


def counted_changes(b: Cell, c: Cell, metrics: Sequence[str], thresholds: Mapping[str, Threshold],
                    elsewhere: str = "") -> list[MetricChange]:  # fmt: skip
    """The counted metrics of one pair: allocations and bytes per op, GC collections per 1k ops,
    instructions and estimated cycles per op. ``elsewhere`` (:func:`counted_elsewhere`): why the
    two files' instruction counts are shown, not gated."""
    bk, ck = b.counted, c.counted
    counted: dict[str, tuple[list[float], list[float], float]] = {
        "allocs": ([k.allocs_per_op for k in bk], [k.allocs_per_op for k in ck], 0.0),
        "bytes": ([k.bytes_per_op for k in bk], [k.bytes_per_op for k in ck], 0.0),
    }
    (gb, rb), (gcand, rc) = _gc_rate(b), _gc_rate(c)
    counted["gc"] = (gb, gcand, max(rb, rc))
    # Counted under Valgrind (run --instructions): one figure a cell, the same in every count but
    # where operations ran on several threads; there the spread of its repeats is the resolution.
    ib, ic = figures(b.instructions), figures(c.instructions)
    spread = max((b.instructions or {}).get("spread", 0.0), (c.instructions or {}).get("spread", 0.0))
    for metric, field in (("instructions", "Ir"), ("cycles", "est_cycles")):
        bv, cv = [getattr(ib, field)] if ib else [], [getattr(ic, field)] if ic else []
        counted[metric] = (bv, cv, spread * max(bv + cv, default=0.0))
    changes = [
        compare_counts(metric, bv, cv, thresholds[metric], resolution)
        for metric, (bv, cv, resolution) in counted.items()
        if metric in metrics and (bv or cv)
    ]
    return [replace(m, regression=False, note=elsewhere) if elsewhere and m.metric in VALGRIND else m
            for m in changes]  # fmt: skip


VALGRIND = ("instructions", "cycles")
"""The metrics counted under Valgrind, comparable only between counts made alike."""


def counted_elsewhere(base: Result, cand: Result, out: Comparison) -> str:
    """Why the two files' instruction counts cannot be compared (made with another Valgrind,
    interpreter build, C library or processor), recorded as a warning; ``""`` where they can."""
    b, c = base.metadata.get("instructions_counted_on"), cand.metadata.get("instructions_counted_on")
    if not isinstance(b, dict) or not isinstance(c, dict):
        return ""
    differ = [key for key in sorted({*b, *c}) if b.get(key) != c.get(key)]
    if not differ:
        return ""
    what = ", ".join(f"{key} {b.get(key, '?')} -> {c.get(key, '?')}" for key in differ)
    out.warnings.append(
        f"instructions counted on different set-ups ({what}): the C library and the interpreter run "
        "other code there, so instructions and cycles are shown, not gated"
    )
    return "counted on another set-up: not gated"
