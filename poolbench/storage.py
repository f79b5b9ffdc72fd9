"""Result files: poolbench's own versioned JSON, written atomically, never silently overwritten.

Schema (``"format": "poolbench-result"``, ``"version": 1``) is documented in the README. pyperf's
format cannot be the primary one: it rejects values that are not > 0, and 0 allocations per
operation is a real result. Readers refuse newer versions by name, and files of other tools
(pyperf's included) with a message that says what the file is.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ResultExistsError, ResultFileError
from .result import SCHEMA, SCHEMA_VERSION, AllocStats, Cell, GcStats, MemoryStats, Result, Run


def to_json(result: Result) -> dict[str, Any]:
    def cell(c: Cell) -> dict[str, Any]:
        return {
            "scenario": c.scenario,
            "pool": c.pool,
            "threads": c.threads,
            "params": c.params,
            "status": c.status,
            "error": c.error,
            "runs": [r.__dict__ for r in c.runs],
            "latency_ns": c.latency_ns,
            "gc": c.gc.__dict__ if c.gc else None,
            "allocs": c.allocs.__dict__ if c.allocs else None,
            "peak_rss_bytes": c.peak_rss_bytes,
            "hit_rate": c.hit_rate,
            "pool_stats": c.pool_stats,
            "memory": c.memory.__dict__ if c.memory else None,
            "warnings": c.warnings,
        }

    return {
        "format": SCHEMA,
        "version": SCHEMA_VERSION,
        "complete": result.complete,
        "metadata": result.metadata,
        "config": result.config,
        "cells": [cell(c) for c in result.cells],
    }


def dumps(result: Result) -> str:
    return json.dumps(to_json(result), indent=1, allow_nan=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename it over ``path``.

    A crash or a full disk leaves the earlier file (if any) untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private; results are ordinary files
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold ``path`` for one writer: a second ``poolbench run -o path`` at the same time is refused
    instead of both printing "saved" while one run's cells are lost (an ``flock`` on a ``.lock``
    file beside it, released when this process ends however it ends)."""
    lock = path.with_name(f".{path.name}.lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ResultFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ResultFileError(
                f"another poolbench run is writing {path}", hint="wait for it, or write to another --out"
            ) from None
        try:
            yield
        finally:
            try:
                os.unlink(lock)
            except OSError:
                pass
    finally:
        os.close(fd)


def save(result: Result, path: Path, *, overwrite: bool = False) -> None:
    if (path.exists() or path.is_symlink()) and not path.is_file():
        raise ResultFileError(
            f"{path} is not a regular file", hint="--out must name a file (or a path that does not exist yet)"
        )
    if path.exists() and not overwrite:
        raise ResultExistsError(
            f"{path} exists", hint="pass --force to overwrite it, or --out to name another file"
        )
    try:
        write_atomic(path, dumps(result))
    except OSError as exc:
        raise ResultFileError(f"cannot write {path}: {exc.strerror or exc}") from None


def default_path(folder: Path, label: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label)[:60] or "run"
    return folder / f"{stamp}-{safe}.json"


# Loading -----------------------------------------------------------------------------------------


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


def load(path: Path) -> Result:
    """Read a result file; any problem is one :class:`ResultFileError` naming the file."""
    try:
        if path.exists() and not path.is_file() and not path.is_dir():
            raise ResultFileError(f"{path} is not a regular file (a device or a pipe?)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(
            f"{path}: no such file", hint="poolbench run saves results under results/"
        ) from None
    except IsADirectoryError:
        raise ResultFileError(f"{path} is a folder, not a result file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the name
        raise ResultFileError(f"{path}: cannot read it ({exc})") from None
    return parse(text, path)


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
    )
