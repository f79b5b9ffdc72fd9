"""The result model: what a run measured, cell by cell, raw values kept.

A *cell* is one (scenario, params, threads or concurrency, pool). Its numbers come from several worker
processes; each process contributes one :class:`Run` of timed values (ns per operation), in the
order they were taken, and the same-round ratios ``none / pool`` (speedups) for pooled cells.

Each type owns its JSON: ``to_json()``, and ``from_json(fields, data, where)``, which checks every
field it reads (:class:`~poolbench.fields.Fields`). A worker's answer carries the same types
(:mod:`poolbench.protocol`), so a new figure is a field here and the code that measures it.

Format history (``"format": "poolbench-result"``, ``"version"``; every older version still reads):

- 5: events a scenario counts itself, per 1,000 operations (``Run.per_1000_ops``); a size
  sweep's observed pass (``Run.acquire``) and its config (``"command": "size"``); instructions and
  simulated cache misses per op (``Cell.instructions``).
- 4: async scenarios: ``Cell.concurrency`` (tasks on one event loop; absent in a threaded cell).
- 3: counting processes of their own (``Cell.counts``), GC processes (``GcStats.processes``) and
  adaptive budgets (``min_processes``, ``max_processes`` in the settings).
- 2: per-process layout seeds and partners, per-pool memory (``Cell.memory``), cell warnings.
- 1: the first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import env
from .errors import ResultFileError
from .fields import MAX_CONCURRENCY, MAX_COUNT, Fields
from .params import format_params


@dataclass
class Acquire:
    """The observed pass of a size sweep (``poolbench size``) in one process: every get and put of
    the pool timed by the harness, after the timed values (which it never slows down)."""

    ops: int
    """Gets observed."""
    seconds: float
    """Wall time of the pass: ``ops / seconds`` is the arrival rate of Little's law."""
    waits_ns: list[float]
    """Acquire waits (a get's call to its return), sorted; at most :data:`WAIT_SAMPLE` of them,
    every n-th of the sorted waits where there were more (its quantiles are theirs)."""
    wait_max_ns: float
    held_ns: float
    """Mean time an object was out, from its get's return to its put."""
    peak_in_use: int
    created: int
    """Objects the pool created in this process (connections opened)."""
    timeouts: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, f: Fields, data: Any, at: str) -> Acquire:
        waits = f.numbers(data, "waits_ns", at)
        if len(waits) > WAIT_SAMPLE:
            raise f.fail(f"{at}.waits_ns", f"more than {WAIT_SAMPLE} waits")
        return cls(
            ops=f.count(data, "ops", at),
            seconds=f.number(data, "seconds", at),
            waits_ns=waits,
            wait_max_ns=f.number(data, "wait_max_ns", at),
            held_ns=f.number(data, "held_ns", at),
            peak_in_use=f.count(data, "peak_in_use", at),
            created=f.count(data, "created", at),
            timeouts=f.count(data, "timeouts", at),
        )


WAIT_SAMPLE = 2000
"""The most acquire waits one process keeps (:class:`Acquire`)."""


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
    per_1000_ops: dict[str, float] = field(default_factory=dict)
    """Events the scenario counts itself (:meth:`~poolbench.Scenario.counters`: connections its
    server accepted, say) per 1,000 operations of this strategy's timed values (format 5)."""
    acquire: Acquire | None = None
    """A size sweep's observed pass (format 5; ``None`` elsewhere)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.acquire is None:
            del data["acquire"]  # only a size sweep's runs have one
        return data

    @classmethod
    def from_json(cls, f: Fields, data: Any, at: str) -> Run:
        acquire = f.get(data, "acquire", dict, at, optional=True)
        return cls(
            loops=f.count(data, "loops", at),
            values=f.numbers(data, "values", at),
            warmups=f.numbers(data, "warmups", at),
            ratios=f.numbers(data, "ratios", at),
            reference=f.numbers(data, "reference", at) if "reference" in data else [],
            allocs_per_op=f.number(data, "allocs_per_op", at, optional=True),
            bytes_per_op=f.number(data, "bytes_per_op", at, optional=True),
            reference_loops=f.count(data, "reference_loops", at, optional=True),
            layout_seed=f.count(data, "layout_seed", at, optional=True),
            partner=f.get(data, "partner", str, at, optional=True),
            hit_rate=f.number(data, "hit_rate", at, optional=True),
            peak_rss_bytes=f.count(data, "peak_rss_bytes", at, optional=True),
            rss_added_bytes=f.count(data, "rss_added_bytes", at, optional=True),
            per_1000_ops=f.rates(data, "per_1000_ops", at),
            acquire=Acquire.from_json(f, acquire, f"{at}.acquire") if acquire is not None else None,
        )


@dataclass
class Count:
    """One counting process's allocations and bytes per operation (a process of its own: counts
    are made alike in every process, so a pair needs a few, not one per timed process)."""

    allocs_per_op: float
    bytes_per_op: float
    layout_seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, f: Fields, data: Any, at: str) -> Count:
        return cls(
            allocs_per_op=f.number(data, "allocs_per_op", at),
            bytes_per_op=f.number(data, "bytes_per_op", at),
            layout_seed=f.count(data, "layout_seed", at, optional=True),
        )


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, f: Fields, data: Any, at: str) -> GcStats:
        collections = f.numbers(data, "collections", at, high=MAX_COUNT)
        if len(collections) != 3 or any(c != int(c) for c in collections):
            raise f.fail(f"{at}.collections", "expected three whole numbers (generations 0, 1, 2)")
        return cls(
            ops=f.count(data, "ops", at),
            collections=[int(c) for c in collections],
            pause_total_ns=f.count(data, "pause_total_ns", at),
            pause_max_ns=f.count(data, "pause_max_ns", at),
            processes=f.count(data, "processes", at, optional=True) or 0,
        )


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, f: Fields, data: Any, at: str) -> AllocStats:
        return cls(
            ops=f.count(data, "ops", at),
            allocations=f.count(data, "allocations", at),
            bytes=f.count(data, "bytes", at),
            peak_bytes=f.count(data, "peak_bytes", at),
        )


@dataclass
class MemoryStats:
    """The resident memory of one strategy's own pass, over the worker's clean baseline.

    Medians over processes. ``peak_reset`` is False when the kernel's peak mark could not be reset
    before the pass: ``peak_bytes`` is then the process's lifetime peak, not the pass's.
    """

    peak_bytes: int = 0
    added_bytes: int = 0
    peak_reset: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, f: Fields, data: Any, at: str) -> MemoryStats:
        return cls(
            peak_bytes=f.count(data, "peak_bytes", at),
            added_bytes=f.count(data, "added_bytes", at),
            peak_reset=f.get(data, "peak_reset", bool, at),
        )


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
    concurrency: int = 0
    """Tasks on one event loop sharing the pool (an async scenario's cell, format 4); 0 in a
    threaded cell."""
    instructions: dict[str, float] | None = None
    """``run --instructions``: callgrind's events per operation (``Ir``, ``I1mr``, ... ``DLmw``),
    counted under Valgrind (:mod:`poolbench.instructions`, format 5); single-thread cells only."""

    @property
    def key(self) -> tuple[str, str, int, str, str, int]:
        return (
            self.scenario,
            self.pool,
            self.threads,
            format_params(self.params),
            self.python,
            self.concurrency,
        )

    @property
    def group_key(self) -> tuple[str, int, str, str, int]:
        """:attr:`key` less the pool: the same for every cell of one group (``none``'s and its pools')."""
        scenario, _pool, threads, params, python, concurrency = self.key
        return (scenario, threads, params, python, concurrency)

    @property
    def members(self) -> int:
        """How many share the pool: the tasks of an async cell, else the threads."""
        return self.concurrency or self.threads

    @property
    def members_label(self) -> str:
        """``threads=4`` or ``concurrency=16``, as the cell's label has it."""
        return f"concurrency={self.concurrency}" if self.concurrency else f"threads={self.threads}"

    @property
    def label(self) -> str:
        params = format_params(self.params)
        shown = f"{self.scenario}/pool={self.pool}/{self.members_label}" + (f" [{params}]" if params else "")
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

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "pool": self.pool,
            "threads": self.threads,
            "params": self.params,
            "status": self.status,
            "error": self.error,
            "runs": [r.to_json() for r in self.runs],
            "latency_ns": self.latency_ns,
            "gc": self.gc.to_json() if self.gc else None,
            "allocs": self.allocs.to_json() if self.allocs else None,
            "peak_rss_bytes": self.peak_rss_bytes,
            "hit_rate": self.hit_rate,
            "pool_stats": self.pool_stats,
            "memory": self.memory.to_json() if self.memory else None,
            "warnings": self.warnings,
            "counts": [k.to_json() for k in self.counts],
            **({"python": self.python} if self.python else {}),
            **({"concurrency": self.concurrency} if self.concurrency else {}),
            **({"instructions": self.instructions} if self.instructions else {}),
        }

    @classmethod
    def from_json(cls, f: Fields, data: Any, where: str) -> Cell:
        runs = [
            Run.from_json(f, run, f"{where}.runs[{i}]")
            for i, run in enumerate(f.get(data, "runs", list, where))
        ]
        threads = f.get(data, "threads", int, where)
        status = f.get(data, "status", str, where)
        if status not in ("ok", "failed", "skipped", "pending"):
            raise f.fail(f"{where}.status", f"unknown status {status!r}")
        if threads < 1 or threads > 1024:
            raise f.fail(f"{where}.threads", "must be from 1 to 1024")
        concurrency = f.get(data, "concurrency", int, where, optional=True) or 0
        if concurrency < 0 or concurrency > MAX_CONCURRENCY:
            raise f.fail(f"{where}.concurrency", f"must be from 1 to {MAX_CONCURRENCY}")
        if status == "ok" and (not runs or not any(run.values for run in runs)):
            raise f.fail(f"{where}.runs", "a measured (ok) cell has no values")
        counts = f.get(data, "counts", list, where, optional=True) or []
        return cls(
            scenario=f.get(data, "scenario", str, where),
            pool=f.get(data, "pool", str, where),
            threads=threads,
            params=f.get(data, "params", dict, where),
            status=status,
            error=f.get(data, "error", str, where, optional=True),
            runs=runs,
            latency_ns=f.numbers(data, "latency_ns", where),
            gc=_optional(GcStats, f, data, "gc", where),
            allocs=_optional(AllocStats, f, data, "allocs", where),
            peak_rss_bytes=f.count(data, "peak_rss_bytes", where, optional=True),
            hit_rate=f.number(data, "hit_rate", where, optional=True),
            pool_stats=f.figures(data, "pool_stats", where),
            memory=_optional(MemoryStats, f, data, "memory", where),
            warnings=f.strings(data, "warnings", where),
            counts=[Count.from_json(f, k, f"{where}.counts[{i}]") for i, k in enumerate(counts)],
            instructions=f.rates(data, "instructions", where) or None,
            python=f.get(data, "python", str, where, optional=True) or "",
            concurrency=concurrency,
        )


SCHEMA = "poolbench-result"
SCHEMA_VERSION = 5
"""The newest format this poolbench writes (the history is at the top of this module)."""


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

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SCHEMA,
            "version": SCHEMA_VERSION,
            "complete": self.complete,
            "metadata": self.metadata,
            "config": self.config,
            "cells": [c.to_json() for c in self.cells],
        }

    @classmethod
    def from_json(cls, data: Any, path: Path) -> Result:
        """A decoded result file, every field checked; any problem is one :class:`ResultFileError`
        naming ``path`` and the place. Newer formats and other tools' files are refused by name."""

        def fail(where: str, what: str) -> ResultFileError:
            return ResultFileError(f"{path}: {where}: {what}", hint="is this a poolbench result file?")

        f = Fields(fail)
        if not isinstance(data, dict):
            raise fail("top level", "expected a JSON object")
        _check_format(data, path, f)
        cells = [
            Cell.from_json(f, c, f"cells[{i}]") for i, c in enumerate(f.get(data, "cells", list, "top level"))
        ]
        seen: dict[Any, int] = {}
        for i, cell in enumerate(cells):
            if cell.key in seen:
                raise fail(f"cells[{i}]", f"the same cell as cells[{seen[cell.key]}] ({cell.label})")
            seen[cell.key] = i
        return cls(
            metadata=f.get(data, "metadata", dict, "top level"),
            config=f.get(data, "config", dict, "top level"),
            cells=cells,
            complete=bool(f.get(data, "complete", bool, "top level")),
        )


def parse(text: str, path: Path) -> Result:
    """A result file's text, checked (:meth:`Result.from_json`)."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ResultFileError(
            f"{path}: not valid JSON ({exc})", hint="the file may be truncated or corrupt"
        ) from None
    return Result.from_json(data, path)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check_format(data: dict[str, Any], path: Path, f: Fields) -> None:
    if data.get("format") != SCHEMA:
        if "benchmarks" in data and "version" in data:
            raise ResultFileError(
                f"{path} is a pyperf file, not a poolbench result",
                hint="compare pyperf files with `python -m pyperf compare_to`",
            )
        raise ResultFileError(f'{path} is not a poolbench result file (no "format": "{SCHEMA}")')
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise f.fail("version", "expected an integer")
    if version > SCHEMA_VERSION:
        raise ResultFileError(
            f"{path} uses result format version {version}; this poolbench reads up to {SCHEMA_VERSION}",
            hint="upgrade poolbench (pip install -U poolbench) to read it",
        )
    if version < 1:
        raise f.fail("version", f"unknown version {version}")


def _optional(kind: Any, f: Fields, data: Any, key: str, where: str) -> Any:
    """``kind.from_json`` of ``data[key]``, or None where the key is absent or null."""
    found = f.get(data, key, dict, where, optional=True)
    return None if found is None else kind.from_json(f, found, f"{where}.{key}")
