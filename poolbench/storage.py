"""Result files: poolbench's own versioned JSON, written atomically, never silently overwritten.

Schema (``"format": "poolbench-result"``, ``"version": 1``) is documented in the README. pyperf's
format cannot be the primary one: it rejects values that are not > 0, and 0 allocations per
operation is a real result. Readers refuse newer versions by name, and files of other tools
(pyperf's included) with a message that says what the file is.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
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


def save(result: Result, path: Path, *, overwrite: bool = False) -> None:
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

    def numbers(self, data: Any, key: str, where: str) -> list[float]:
        values = self.get(data, key, list, where)
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise self.fail(f"{where}.{key}[{i}]", "expected a finite number")
        return [float(v) for v in values]


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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(
            f"{path}: no such file", hint="poolbench run saves results under results/"
        ) from None
    except IsADirectoryError:
        raise ResultFileError(f"{path} is a folder, not a result file") from None
    except (OSError, UnicodeDecodeError) as exc:
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
                loops=r.get(run, "loops", int, at),
                values=r.numbers(run, "values", at),
                warmups=r.numbers(run, "warmups", at),
                ratios=r.numbers(run, "ratios", at),
                reference=r.numbers(run, "reference", at) if "reference" in run else [],
                allocs_per_op=r.get(run, "allocs_per_op", (int, float), at, optional=True),
                bytes_per_op=r.get(run, "bytes_per_op", (int, float), at, optional=True),
                reference_loops=r.get(run, "reference_loops", int, at, optional=True),
                layout_seed=r.get(run, "layout_seed", int, at, optional=True),
                partner=r.get(run, "partner", str, at, optional=True),
                hit_rate=r.get(run, "hit_rate", (int, float), at, optional=True),
                peak_rss_bytes=r.get(run, "peak_rss_bytes", int, at, optional=True),
                rss_added_bytes=r.get(run, "rss_added_bytes", int, at, optional=True),
            )
        )
    gc_data = r.get(data, "gc", dict, where, optional=True)
    gc = None
    if gc_data is not None:
        collections = [int(x) for x in r.numbers(gc_data, "collections", f"{where}.gc")]
        gc = GcStats(
            ops=r.get(gc_data, "ops", int, f"{where}.gc"),
            collections=collections,
            pause_total_ns=r.get(gc_data, "pause_total_ns", int, f"{where}.gc"),
            pause_max_ns=r.get(gc_data, "pause_max_ns", int, f"{where}.gc"),
        )
    alloc_data = r.get(data, "allocs", dict, where, optional=True)
    allocs = None
    if alloc_data is not None:
        at = f"{where}.allocs"
        allocs = AllocStats(
            ops=r.get(alloc_data, "ops", int, at),
            allocations=r.get(alloc_data, "allocations", int, at),
            bytes=r.get(alloc_data, "bytes", int, at),
            peak_bytes=r.get(alloc_data, "peak_bytes", int, at),
        )
    memory_data = r.get(data, "memory", dict, where, optional=True)
    memory = None
    if memory_data is not None:
        at = f"{where}.memory"
        memory = MemoryStats(
            peak_bytes=r.get(memory_data, "peak_bytes", int, at),
            added_bytes=r.get(memory_data, "added_bytes", int, at),
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
    if threads < 1:
        raise r.fail(f"{where}.threads", "must be >= 1")
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
        peak_rss_bytes=r.get(data, "peak_rss_bytes", int, where, optional=True),
        hit_rate=r.get(data, "hit_rate", (int, float), where, optional=True),
        pool_stats=r.get(data, "pool_stats", dict, where, optional=True),
        memory=memory,
        warnings=warnings,
    )
