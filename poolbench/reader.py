"""Reading a result file back: the one place that checks it field by field.

Every complaint is one :class:`ResultFileError` naming the file and the place
(``cells[0].runs[0].values[2]: expected a finite number``): wrong types, missing keys, NaN or
infinities, negative or implausible values, a cell twice, an ok cell with no values. Format 1
files read with their newer fields empty; newer formats and other tools' files are refused by name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .errors import ResultFileError
from .result import SCHEMA, SCHEMA_VERSION, AllocStats, Cell, Count, GcStats, MemoryStats, Result, Run

MAX_VALUE = 1e15
"""The largest time (ns: 11 days per operation), ratio or per-op figure a file may hold."""
MAX_COUNT = 1 << 62
MIN_POSITIVE = 1e-12


class _Reader:
    """Typed access to a decoded file; every complaint names the file and the place."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, what: str) -> ResultFileError:
        return ResultFileError(f"{self.path}: {where}: {what}", hint="is this a poolbench result file?")

    def get(
        self, data: Any, key: str, kind: type | tuple[type, ...], where: str, *, optional: bool = False
    ) -> Any:
        if not isinstance(data, dict):
            raise self.fail(where, "expected an object")
        if key not in data:
            if optional:
                return None
            raise self.fail(where, f"missing {key!r}")
        value = data[key]
        if value is None and optional:
            return None
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise self.fail(f"{where}.{key}", "expected a number, found a boolean")
        if not isinstance(value, kind):
            raise self.fail(f"{where}.{key}", f"expected {_kind_name(kind)}, found {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{where}.{key}", "not a finite number")
        return value

    def numbers(self, data: Any, key: str, where: str, *, high: float = MAX_VALUE) -> list[float]:
        values = self.get(data, key, list, where)
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise self.fail(f"{where}.{key}[{i}]", "expected a finite number")
            self.check_range(v, f"{where}.{key}[{i}]", high=high)
        return [float(v) for v in values]

    def check_range(self, value: float, where: str, *, high: float = MAX_VALUE) -> None:
        """No negative counts or times, nothing absurdly large or vanishingly small (a time of
        1e-320 ns or 1e308 ns is a corrupt file, and would break every figure computed from it)."""
        if value < 0:
            raise self.fail(where, f"must not be negative, found {value}")
        if value > high:
            raise self.fail(where, f"implausibly large ({value:g}; at most {high:g})")
        if 0 < value < MIN_POSITIVE:
            raise self.fail(where, f"implausibly small ({value:g})")

    def count(self, data: Any, key: str, where: str, *, optional: bool = False) -> Any:
        """A non-negative integer within range (or None when ``optional`` and absent)."""
        value = self.get(data, key, int, where, optional=optional)
        if value is not None:
            self.check_range(value, f"{where}.{key}", high=MAX_COUNT)
        return value

    def number(self, data: Any, key: str, where: str, *, optional: bool = False) -> Any:
        value = self.get(data, key, (int, float), where, optional=optional)
        if value is not None:
            self.check_range(value, f"{where}.{key}")
        return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        bool: "a boolean",
    }
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse(text: str, path: Path) -> Result:
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ResultFileError(
            f"{path}: not valid JSON ({exc})", hint="the file may be truncated or corrupt"
        ) from None
    reader = _Reader(path)
    if not isinstance(data, dict):
        raise reader.fail("top level", "expected a JSON object")
    if data.get("format") != SCHEMA:
        if "benchmarks" in data and "version" in data:
            raise ResultFileError(
                f"{path} is a pyperf file, not a poolbench result",
                hint="compare pyperf files with `python -m pyperf compare_to`",
            )
        raise ResultFileError(f'{path} is not a poolbench result file (no "format": "{SCHEMA}")')
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise reader.fail("version", "expected an integer")
    if version > SCHEMA_VERSION:
        raise ResultFileError(
            f"{path} uses result format version {version}; this poolbench reads up to {SCHEMA_VERSION}",
            hint="upgrade poolbench (pip install -U poolbench) to read it",
        )
    if version < 1:
        raise reader.fail("version", f"unknown version {version}")
    cells = [
        _cell(reader, c, f"cells[{i}]") for i, c in enumerate(reader.get(data, "cells", list, "top level"))
    ]
    seen: dict[Any, int] = {}
    for i, cell in enumerate(cells):
        if cell.key in seen:
            raise reader.fail(f"cells[{i}]", f"the same cell as cells[{seen[cell.key]}] ({cell.label})")
        seen[cell.key] = i
    return Result(
        metadata=reader.get(data, "metadata", dict, "top level"),
        config=reader.get(data, "config", dict, "top level"),
        cells=cells,
        complete=bool(reader.get(data, "complete", bool, "top level")),
    )


def _cell(r: _Reader, data: Any, where: str) -> Cell:
    runs = []
    for i, run in enumerate(r.get(data, "runs", list, where)):
        at = f"{where}.runs[{i}]"
        runs.append(
            Run(
                loops=r.count(run, "loops", at),
                values=r.numbers(run, "values", at),
                warmups=r.numbers(run, "warmups", at),
                ratios=r.numbers(run, "ratios", at),
                reference=r.numbers(run, "reference", at) if "reference" in run else [],
                allocs_per_op=r.number(run, "allocs_per_op", at, optional=True),
                bytes_per_op=r.number(run, "bytes_per_op", at, optional=True),
                reference_loops=r.count(run, "reference_loops", at, optional=True),
                layout_seed=r.count(run, "layout_seed", at, optional=True),
                partner=r.get(run, "partner", str, at, optional=True),
                hit_rate=r.number(run, "hit_rate", at, optional=True),
                peak_rss_bytes=r.count(run, "peak_rss_bytes", at, optional=True),
                rss_added_bytes=r.count(run, "rss_added_bytes", at, optional=True),
            )
        )
    gc_data = r.get(data, "gc", dict, where, optional=True)
    gc = None
    if gc_data is not None:
        collections = r.numbers(gc_data, "collections", f"{where}.gc", high=MAX_COUNT)
        if len(collections) != 3 or any(c != int(c) for c in collections):
            raise r.fail(f"{where}.gc.collections", "expected three whole numbers (generations 0, 1, 2)")
        gc = GcStats(
            ops=r.count(gc_data, "ops", f"{where}.gc"),
            collections=[int(c) for c in collections],
            pause_total_ns=r.count(gc_data, "pause_total_ns", f"{where}.gc"),
            pause_max_ns=r.count(gc_data, "pause_max_ns", f"{where}.gc"),
            processes=r.count(gc_data, "processes", f"{where}.gc", optional=True) or 0,
        )
    alloc_data = r.get(data, "allocs", dict, where, optional=True)
    allocs = None
    if alloc_data is not None:
        at = f"{where}.allocs"
        allocs = AllocStats(
            ops=r.count(alloc_data, "ops", at),
            allocations=r.count(alloc_data, "allocations", at),
            bytes=r.count(alloc_data, "bytes", at),
            peak_bytes=r.count(alloc_data, "peak_bytes", at),
        )
    memory_data = r.get(data, "memory", dict, where, optional=True)
    memory = None
    if memory_data is not None:
        at = f"{where}.memory"
        memory = MemoryStats(
            peak_bytes=r.count(memory_data, "peak_bytes", at),
            added_bytes=r.count(memory_data, "added_bytes", at),
            peak_reset=r.get(memory_data, "peak_reset", bool, at),
        )
    counts = []
    for i, k in enumerate(r.get(data, "counts", list, where, optional=True) or []):
        at = f"{where}.counts[{i}]"
        counts.append(
            Count(
                allocs_per_op=r.number(k, "allocs_per_op", at),
                bytes_per_op=r.number(k, "bytes_per_op", at),
                layout_seed=r.count(k, "layout_seed", at, optional=True),
            )
        )
    warnings = r.get(data, "warnings", list, where, optional=True) or []
    for i, w in enumerate(warnings):
        if not isinstance(w, str):
            raise r.fail(f"{where}.warnings[{i}]", "expected a string")
    threads = r.get(data, "threads", int, where)
    status = r.get(data, "status", str, where)
    if status not in ("ok", "failed", "skipped", "pending"):
        raise r.fail(f"{where}.status", f"unknown status {status!r}")
    if threads < 1 or threads > 1024:
        raise r.fail(f"{where}.threads", "must be from 1 to 1024")
    if status == "ok" and (not runs or not any(run.values for run in runs)):
        raise r.fail(f"{where}.runs", "a measured (ok) cell has no values")
    pool_stats = r.get(data, "pool_stats", dict, where, optional=True)
    for key, value in (pool_stats or {}).items():
        at = f"{where}.pool_stats.{key}"
        if key == "strategy":
            if not isinstance(value, str):
                raise r.fail(at, "expected a string")
        elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise r.fail(at, f"expected a number, found {type(value).__name__}")
        elif value is not None:
            if not math.isfinite(value):
                raise r.fail(at, "not a finite number")
            r.check_range(value, at, high=MAX_COUNT)
    return Cell(
        scenario=r.get(data, "scenario", str, where),
        pool=r.get(data, "pool", str, where),
        threads=threads,
        params=r.get(data, "params", dict, where),
        status=status,
        error=r.get(data, "error", str, where, optional=True),
        runs=runs,
        latency_ns=r.numbers(data, "latency_ns", where),
        gc=gc,
        allocs=allocs,
        peak_rss_bytes=r.count(data, "peak_rss_bytes", where, optional=True),
        hit_rate=r.number(data, "hit_rate", where, optional=True),
        pool_stats=pool_stats,
        memory=memory,
        warnings=warnings,
        counts=counts,
        python=r.get(data, "python", str, where, optional=True) or "",
    )
