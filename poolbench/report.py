"""From raw cells to the figures a user reads: one :class:`CellReport` per cell.

Tables, CSV, Markdown and plots all render these, so every output agrees. Intervals treat the
worker process as the unit of replication (:func:`~poolbench.stats.summarize_runs`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from .instructions import Counts, figures
from .result import Cell, Result
from .stats import Summary, percentile, summarize_runs
from .verdict import FIXED, Looks, Speedup, looks_of, main_mode, speedup


@dataclass(frozen=True)
class CellReport:
    cell: Cell
    time: Summary | None  # ns per operation
    p50_ns: float | None
    p99_ns: float | None
    allocs_per_op: float | None
    bytes_per_op: float | None
    peak_bytes: int | None
    gc_per_kop: tuple[float, float, float] | None
    gc_pause_ms: float | None
    gc_pause_max_ms: float | None
    gc_pause_ns_per_op: float | None
    """GC pause per operation: the same in every mode (totals grow with the pass's length)."""
    speedup: Speedup | None
    instructions: Counts | None = None
    """``run --instructions``: callgrind's counts per operation (a single-thread cell's)."""
    instructions_spread: float = 0.0
    """(highest - lowest) / median instructions per op over the counts' repeats; 0 where they agreed."""
    per_1000_ops: dict[str, float] = field(default_factory=dict)
    """Events the scenario counted itself (connections opened, say) per 1,000 operations: the
    median over the processes that counted them."""
    python: str = ""
    """The label of the interpreter that measured the cell (:meth:`Result.python_of`)."""
    split: str = ""
    """Where the processes split into modes: which strategy's time moved, by how much, and the
    layout seed that reproduces each other mode (:func:`split_of`)."""

    @property
    def ops_per_sec(self) -> float | None:
        return 1e9 / self.time.median if self.time and self.time.median > 0 else None

    @property
    def waits(self) -> tuple[int, float, int] | None:
        """(gets that waited, total wait ms, timeouts) of a pool that makes callers wait."""
        s = self.cell.pool_stats
        if not s or not (s.get("waits") or s.get("timeouts") or s.get("in_use") is not None):
            return None
        return int(s.get("waits", 0)), 1000 * float(s.get("wait_seconds", 0.0)), int(s.get("timeouts", 0))

    @property
    def verdict(self) -> str | None:
        return self.speedup.verdict if self.speedup else None


def report_cell(
    cell: Cell, python: str = "", looks: Looks = FIXED, partner: Cell | None = None
) -> CellReport:
    runs = cell.values_by_run
    time = summarize_runs(runs) if runs else None
    latency = cell.latency_ns
    allocs = cell.allocs
    per_op = allocs is not None and allocs.ops > 0
    gc = cell.gc
    gc_rate = None
    if gc is not None and gc.ops > 0:
        g0, g1, g2 = (1000 * c / gc.ops for c in gc.collections[:3])
        gc_rate = (g0, g1, g2)
    ratios = cell.ratios_by_run
    found = speedup(ratios, looks) if cell.pool != "none" and ratios else None
    return CellReport(
        cell=cell,
        time=time,
        p50_ns=percentile(latency, 50) if latency else None,
        p99_ns=percentile(latency, 99) if latency else None,
        allocs_per_op=allocs.allocations / allocs.ops if per_op and allocs else None,
        bytes_per_op=allocs.bytes / allocs.ops if per_op and allocs else None,
        peak_bytes=allocs.peak_bytes if allocs else None,
        gc_per_kop=gc_rate,
        gc_pause_ms=gc.pause_total_ns / 1e6 if gc else None,
        gc_pause_max_ms=gc.pause_max_ns / 1e6 if gc else None,
        gc_pause_ns_per_op=gc.pause_total_ns / gc.ops if gc and gc.ops > 0 else None,
        speedup=found,
        per_1000_ops=per_1000_ops(cell),
        instructions=figures(cell.instructions),
        instructions_spread=float((cell.instructions or {}).get("spread", 0.0)),
        python=python or cell.python,
        split=split_of(cell, partner, found) if found and partner and found.stability else "",
    )


def per_1000_ops(cell: Cell) -> dict[str, float]:
    """The median over processes of each event the scenario counted, per 1,000 operations."""
    names = sorted({name for run in cell.runs for name in run.per_1000_ops})
    return {
        name: statistics.median(run.per_1000_ops[name] for run in cell.runs if name in run.per_1000_ops)
        for name in names
    }


def split_of(cell: Cell, partner: Cell, s: Speedup) -> str:
    """For a pooled cell whose processes split: for each mode other than the main one, the
    strategy whose time moved most against the main mode, by how much, and one process's layout
    seed (``run --layout-seed`` gives every process that layout, and so that mode)."""
    if s.stability is None or not s.stability.split:
        return ""
    runs = [r for r in cell.runs if r.ratios]
    by_seed = {r.layout_seed: r.values for r in partner.runs if r.partner == cell.pool and r.values}
    main = main_mode(s.stability)

    def times(members: tuple[int, ...]) -> tuple[float, float] | None:
        pooled = [statistics.median(runs[i].values) for i in members if runs[i].values]
        found = [by_seed.get(runs[i].layout_seed) for i in members]
        unpooled = [statistics.median(v) for v in found if v]
        return (statistics.median(unpooled), statistics.median(pooled)) if pooled and unpooled else None

    home = times(main.members)
    parts = []
    for mode in s.stability.modes:
        there = times(mode.members)
        if mode is main or home is None or there is None:
            continue
        moves = {"none": there[0] / home[0], cell.pool: there[1] / home[1]}
        name = max(moves, key=lambda k: abs(math.log(moves[k])))
        seed = runs[mode.members[0]].layout_seed
        reproduce = f", --layout-seed {seed}" if seed is not None else ""
        parts.append(f"{mode.value:.2f}x: {name}'s time x{moves[name]:.2g}{reproduce}")
    return "; ".join(parts)


def _param_order(cell: Cell) -> tuple[tuple[str, str, float], ...]:
    """Parameters in numeric order where they are numbers (1KiB before 64KiB before 1MiB)."""
    out = []
    for key, value in sorted(cell.params.items()):
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
        out.append((key, "" if number or value == 0 else str(value), float(number)))
    return tuple(out)


def report(result: Result) -> list[CellReport]:
    """Cells grouped by scenario (in order of appearance), then params, interpreter, threads, pool."""
    order = {name: i for i, name in enumerate(dict.fromkeys(c.scenario for c in result.cells))}
    pools = {name: i for i, name in enumerate(dict.fromkeys(c.pool for c in result.cells))}
    pythons = {name: i for i, name in enumerate(dict.fromkeys(c.python for c in result.cells))}
    cells = sorted(
        result.cells,
        key=lambda c: (
            order[c.scenario], _param_order(c), pythons[c.python], c.threads, c.concurrency, c.pool != "none", pools[c.pool],
        ),
    )  # fmt: skip
    looks = looks_of(result.config.get("settings"))
    unpooled = {c.group_key: c for c in result.cells if c.pool == "none"}
    return [report_cell(c, result.python_of(c), looks, unpooled.get(c.group_key)) for c in cells]
