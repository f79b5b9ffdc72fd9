"""The result model: what a run measured, cell by cell, raw values kept.

A *cell* is one (scenario, params, threads, pool). Its numbers come from several worker
processes; each process contributes one :class:`Run` of timed values (ns per operation), in the
order they were taken, and the same-round ratios ``none / pool`` (speedups) for pooled cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import env
from .params import format_params


@dataclass
class Run:
    """One worker process's timed values for one cell."""

    loops: int
    values: list[float]
    warmups: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    """``none / pool`` per round, each pair taken back to back in this process (pooled cells)."""
    reference: list[float] = field(default_factory=list)
    """ns per iteration of the reference workload, timed in the same round as each value."""
    allocs_per_op: float | None = None
    bytes_per_op: float | None = None
    """This process's allocation counts, in files of format 2, where timed processes counted
    too (format 3 keeps them in ``Cell.counts``; ``Cell.allocs`` holds the totals)."""
    reference_loops: int | None = None
    layout_seed: int | None = None
    """The seed of this process's randomized heap layout (:mod:`poolbench.layout`)."""
    partner: str | None = None
    """The other strategy measured in the same process (``none`` for a pool, a pool for ``none``)."""
    hit_rate: float | None = None
    peak_rss_bytes: int | None = None
    rss_added_bytes: int | None = None
    """Peak RSS of this strategy's GC pass, and what it added over the process's clean baseline."""


@dataclass
class Count:
    """One counting process's allocations and bytes per operation (a process of its own: counts
    are made alike in every process, so a pair needs a few, not one per timed process)."""

    allocs_per_op: float
    bytes_per_op: float
    layout_seed: int | None = None


@dataclass
class GcStats:
    ops: int = 0
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    pause_total_ns: int = 0
    pause_max_ns: int = 0
    processes: int = 0
    """How many worker processes ran a GC pass for these totals (0: not recorded, format 2)."""

    def add(self, other: GcStats) -> None:
        self.processes += other.processes
        self.ops += other.ops
        self.collections = [a + b for a, b in zip(self.collections, other.collections, strict=False)]
        self.pause_total_ns += other.pause_total_ns
        self.pause_max_ns = max(self.pause_max_ns, other.pause_max_ns)


@dataclass
class AllocStats:
    ops: int = 0
    allocations: int = 0
    bytes: int = 0
    peak_bytes: int = 0

    def add(self, other: AllocStats) -> None:
        self.ops += other.ops
        self.allocations += other.allocations
        self.bytes += other.bytes
        self.peak_bytes = max(self.peak_bytes, other.peak_bytes)


@dataclass
class MemoryStats:
    """The resident memory of one strategy's own pass, over the worker's clean baseline.

    Medians over processes. ``peak_reset`` is False when the kernel's peak mark could not be reset
    before the pass: ``peak_bytes`` is then the process's lifetime peak, not the pass's.
    """

    peak_bytes: int = 0
    added_bytes: int = 0
    peak_reset: bool = True


@dataclass
class Cell:
    scenario: str
    pool: str
    threads: int
    params: dict[str, Any]
    status: str = "ok"  # "ok" | "failed" | "skipped" | "pending" (an interrupted run's, not measured yet)
    error: str | None = None
    runs: list[Run] = field(default_factory=list)
    latency_ns: list[float] = field(default_factory=list)
    gc: GcStats | None = None
    allocs: AllocStats | None = None
    peak_rss_bytes: int | None = None
    hit_rate: float | None = None
    pool_stats: dict[str, Any] | None = None
    memory: MemoryStats | None = None
    warnings: list[str] = field(default_factory=list)
    """What a reader must know about these figures (a count that could not be made, say)."""
    counts: list[Count] = field(default_factory=list)
    """One per counting process (format 3)."""
    python: str = ""
    """The interpreter's label (``3.11``, ``3.13t``: :func:`poolbench.env.label`) in a run under
    several (``--python`` repeated); empty in a run under one, whose metadata names it."""

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        return (self.scenario, self.pool, self.threads, format_params(self.params), self.python)

    @property
    def label(self) -> str:
        params = format_params(self.params)
        shown = f"{self.scenario}/pool={self.pool}/threads={self.threads}" + (
            f" [{params}]" if params else ""
        )
        return f"{shown} @{self.python}" if self.python else shown

    @property
    def values(self) -> list[float]:
        return [v for run in self.runs for v in run.values]

    @property
    def ratios(self) -> list[float]:
        return [r for run in self.runs for r in run.ratios]

    @property
    def normalized(self) -> list[float]:
        """Values divided by the reference workload's time of the same round (unitless)."""
        return [v for per_run in self.normalized_by_run for v in per_run]

    @property
    def normalized_by_run(self) -> list[list[float]]:
        """:attr:`normalized`, one list per worker process (empty lists where no reference)."""
        return [
            [v / r for v, r in zip(run.values, run.reference, strict=False) if r > 0] for run in self.runs
        ]

    @property
    def values_by_run(self) -> list[list[float]]:
        return [run.values for run in self.runs if run.values]

    @property
    def ratios_by_run(self) -> list[list[float]]:
        return [run.ratios for run in self.runs if run.ratios]

    @property
    def counted(self) -> list[Count]:
        """Allocations and bytes per op, one per process that counted: the counting processes,
        or, in a file of format 2, the timed processes that counted."""
        if self.counts:
            return list(self.counts)
        return [
            Count(r.allocs_per_op, r.bytes_per_op, r.layout_seed)
            for r in self.runs
            if r.allocs_per_op is not None and r.bytes_per_op is not None
        ]


SCHEMA = "poolbench-result"
SCHEMA_VERSION = 3
"""3 added counting processes (``counts``), GC processes and adaptive budgets (``min_processes``,
``max_processes`` in the settings); 2 added per-process layout seeds and partners, per-pool memory
and cell warnings. 1 and 2 still read."""


@dataclass
class Result:
    metadata: dict[str, Any]
    config: dict[str, Any]
    cells: list[Cell] = field(default_factory=list)
    complete: bool = False

    def failed(self) -> list[Cell]:
        return [c for c in self.cells if c.status == "failed"]

    def skipped(self) -> list[Cell]:
        return [c for c in self.cells if c.status == "skipped"]

    @property
    def pythons(self) -> list[str]:
        """The interpreters' labels, in the order of the cells (one for a single-interpreter run)."""
        return list(dict.fromkeys(self.python_of(c) for c in self.cells)) or [env.label(self.metadata)]

    def python_of(self, cell: Cell) -> str:
        """The label of the interpreter that measured ``cell``."""
        return cell.python or env.label(self.metadata)
