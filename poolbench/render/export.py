"""Machine-readable renderings of a result: CSV, Markdown and summarized JSON."""

from __future__ import annotations

import csv
import io
import json
import platform
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ResultFileError
from ..instructions import figures
from ..params import format_params
from ..report import CellReport
from ..result import Cell, Result
from . import format as fmt

CSV_COLUMNS = [
    "scenario", "pool", "threads", "params", "python", "status", "ns_per_op", "ns_per_op_ci_low",
    "ns_per_op_ci_high", "ops_per_sec", "p50_ns", "p99_ns", "allocs_per_op", "bytes_per_op",
    "gc0_per_kop", "gc1_per_kop", "gc2_per_kop", "gc_pause_ms", "gc_pause_ns_per_op", "peak_rss_bytes",
    "rss_added_bytes", "peak_rss_reset", "hit_rate",
    "speedup", "speedup_ci_low", "speedup_ci_high", "verdict", "pool_waits", "pool_wait_ms",
    "pool_timeouts", "concurrency", "per_1000_ops", "instr_per_op", "instr_spread", "l1_miss_per_op", "ll_miss_per_op",
    "est_cycles_per_op",
]  # fmt: skip
"""``per_1000_ops`` holds the events a scenario counts itself, ``connections=1000`` (``;`` between
several); the summarized JSON has them as an object."""


def _num(x: float | int | None, digits: int = 4) -> str:
    if x is None:
        return ""
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}g}" if abs(x) >= 1e6 or (x and abs(x) < 1e-3) else f"{round(x, digits)}"


def row(r: CellReport) -> dict[str, str]:
    c, t, s, g = r.cell, r.time, r.speedup, r.gc_per_kop
    return {
        "scenario": c.scenario,
        "pool": c.pool,
        "threads": str(c.threads),
        "concurrency": str(c.concurrency) if c.concurrency else "",
        "params": format_params(c.params),
        "python": r.python,
        "status": c.status,
        "ns_per_op": _num(t.median if t else None),
        "ns_per_op_ci_low": _num(t.ci_low if t else None),
        "ns_per_op_ci_high": _num(t.ci_high if t else None),
        "ops_per_sec": _num(r.ops_per_sec, 6),
        "p50_ns": _num(r.p50_ns),
        "p99_ns": _num(r.p99_ns),
        "allocs_per_op": _num(r.allocs_per_op),
        "bytes_per_op": _num(r.bytes_per_op),
        "gc0_per_kop": _num(g[0] if g else None),
        "gc1_per_kop": _num(g[1] if g else None),
        "gc2_per_kop": _num(g[2] if g else None),
        "gc_pause_ms": _num(r.gc_pause_ms),
        "gc_pause_ns_per_op": _num(r.gc_pause_ns_per_op),
        "peak_rss_bytes": _num(c.peak_rss_bytes),
        "rss_added_bytes": _num(c.memory.added_bytes if c.memory else None),
        "peak_rss_reset": "" if c.memory is None else str(c.memory.peak_reset).lower(),
        "hit_rate": _num(c.hit_rate),
        "speedup": _num(s.ratio if s else None),
        "speedup_ci_low": _num(s.ci_low if s else None),
        "speedup_ci_high": _num(s.ci_high if s else None),
        "verdict": s.verdict if s else "",
        "pool_waits": _num(r.waits[0] if r.waits else None),
        "pool_wait_ms": _num(r.waits[1] if r.waits else None),
        "pool_timeouts": _num(r.waits[2] if r.waits else None),
        "per_1000_ops": ";".join(f"{name}={_num(value)}" for name, value in r.per_1000_ops.items()),
        "instr_per_op": _num(r.instructions.Ir if r.instructions else None, 6),
        "instr_spread": _num(r.instructions_spread if r.instructions else None),
        "l1_miss_per_op": _num(r.instructions.l1_misses if r.instructions else None),
        "ll_miss_per_op": _num(r.instructions.ll_misses if r.instructions else None),
        "est_cycles_per_op": _num(r.instructions.est_cycles if r.instructions else None, 6),
    }


def to_csv(reports: Sequence[CellReport]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in reports:
        writer.writerow(row(r))
    return out.getvalue()


def to_markdown(result: Result, reports: Sequence[CellReport]) -> str:
    several = len(result.pythons) > 1
    events = sorted({name for r in reports for name in r.per_1000_ops})
    counted = any(r.instructions for r in reports)
    unpooled = {(r.python, r.cell.scenario, format_params(r.cell.params), r.cell.members): r.instructions
                for r in reports if r.cell.pool == "none"}  # fmt: skip
    lines = [
        f"### poolbench: {len(reports)} cells",
        "",
        f"{fmt.where(result.metadata)} · mode {result.config.get('mode', '?')}"
        + ("" if result.complete else " · **incomplete**"),
        "",
        "| scenario | params |" + (" python |" if several else "") + " threads | pool | time/op | allocs/op "
        "| B/op | GC/1k ops (0/1/2) | speedup [95% CI] | verdict |"
        + "".join(f" {e}/1k ops |" for e in events)
        + (" instr/op (vs none) | est. cycles/op | LL miss/op |" if counted else ""),
        "|---|---|"
        + ("---|" if several else "")
        + "--:|---|--:|--:|--:|--:|--:|---|"
        + "--:|" * len(events)
        + ("--:|--:|--:|" if counted else ""),
    ]
    for r in reports:
        c = r.cell
        head = f"| {c.scenario} | {format_params(c.params)} |" + (f" {r.python} |" if several else "")
        if c.status != "ok":
            lines.append(
                f"{head} {_members(c)} | {c.pool} | {c.status}: {c.error} | | | | | |"
                + " |" * len(events)
                + (" | | |" if counted else "")
            )
            continue
        mine = r.instructions
        base = unpooled.get((r.python, c.scenario, format_params(c.params), c.members))
        lines.append(
            f"{head} {_members(c)} | {c.pool} | {fmt.time_ci(r)} "
            f"| {fmt.count(r.allocs_per_op)} | {fmt.size(r.bytes_per_op)} | {fmt.gc_rates(r)} "
            f"| {fmt.speedup(r)} | {fmt.verdict(r)} |"
            + "".join(f" {fmt.count(r.per_1000_ops.get(e))} |" for e in events)
            + (
                f" {fmt.instructions(mine, base, r.instructions_spread)} "
                f"| {fmt.count(mine.est_cycles, 0) if mine else '-'} | {fmt.count(mine.ll_misses if mine else None, 2)} |"
                if counted
                else ""
            )
        )
    return "\n".join(lines) + "\n"


def to_summary_json(result: Result, reports: Sequence[CellReport]) -> str:
    """The summaries (one object per cell, CSV's fields typed), for scripts; raw values stay in the file."""
    cells: list[dict[str, Any]] = []
    for r in reports:
        fields = row(r)
        typed: dict[str, Any] = {}
        for key, value in fields.items():
            if key in ("scenario", "pool", "params", "python", "status", "verdict"):
                typed[key] = value or None
            elif key == "per_1000_ops":
                typed[key] = r.per_1000_ops or None
            elif value == "":
                typed[key] = None
            elif key == "peak_rss_reset":
                typed[key] = value == "true"
            else:
                typed[key] = int(value) if key in ("threads", "concurrency") else float(value)
        typed["params"] = r.cell.params
        typed["error"] = r.cell.error
        typed["warnings"] = r.cell.warnings
        s = r.speedup
        if s is not None:
            typed["speedup_processes"] = s.processes
            if s.verdict == "inconclusive":
                typed["more_processes"] = s.more
        stability = s.stability if s else None
        if stability is not None and stability.split:
            typed["modes"] = [{"speedup": m.value, "share": m.share} for m in stability.modes]
            typed["split"] = r.split or None
        cells.append(typed)
    return (
        json.dumps({"metadata": result.metadata, "complete": result.complete, "cells": cells}, indent=1)
        + "\n"
    )


def _bench_name(cell: Cell) -> str:
    base = "".join(part.capitalize() for part in cell.scenario.replace("_", "-").split("-"))
    params = "/".join(f"{k}={cell.params[k]}" for k in sorted(cell.params) if cell.params[k] != "")
    python = f"/python={cell.python}" if cell.python else ""
    return f"{base}/pool={cell.pool}/{cell.members_label}{python}" + (f"/{params}" if params else "")


def _members(cell: Cell) -> str:
    """The Markdown table's threads column: the thread count, or an async cell's tasks."""
    return f"{cell.concurrency} tasks" if cell.concurrency else str(cell.threads)


def to_benchstat(result: Result) -> str:
    """Go benchmark text: one line per timed value, with B/op and allocs/op of its process.

    benchstat reads each line as one sample, as it does for ``go test -count N``.
    """
    meta = result.metadata
    lines = [
        f"goos: {sys.platform}",
        f"goarch: {platform.machine()}",
        "pkg: poolbench",
        f"cpu: {meta.get('cpu_model', 'unknown')}",
    ]
    for cell in result.cells:
        if cell.status != "ok":
            continue
        name = "Benchmark" + _bench_name(cell)
        counted = cell.allocs if cell.allocs is not None and cell.allocs.ops > 0 else None
        for run in cell.runs:
            # Counting processes are processes of their own: every timed line carries the
            # cell's counts, which are the same in every process that counted (by construction).
            allocs, size = run.allocs_per_op, run.bytes_per_op
            if allocs is None and counted is not None:
                allocs, size = counted.allocations / counted.ops, counted.bytes / counted.ops
            extra = ""
            if size is not None:
                extra += f"  {size:.0f} B/op"
            if allocs is not None:
                extra += f"  {allocs:.2f} allocs/op"
            for event, rate in run.per_1000_ops.items():  # Go's b.ReportMetric(n, "connections/op")
                extra += f"  {rate / 1000:.4g} {event.replace(' ', '-')}/op"
            counts = figures(cell.instructions)
            if counts:
                extra += (f"  {counts.Ir:.1f} instr/op  {counts.est_cycles:.1f} est-cycles/op"
                          f"  {counts.l1_misses:.3f} L1-miss/op  {counts.ll_misses:.3f} LL-miss/op")  # fmt: skip
            for value in run.values:
                lines.append(f"{name}  {run.loops * cell.members}  {value:.2f} ns/op{extra}")
    return "\n".join(lines) + "\n"


def to_pyperf(result: Result) -> str:
    """pyperf's JSON (``python -m pyperf stats|show|compare_to`` read it).

    One benchmark per cell for time (seconds per op; each worker process a pyperf run, its
    warmups kept), and one per cell for allocations per op (``integer``) where it is above zero:
    pyperf rejects values that are not > 0, so a zero-allocation cell is left out of this export
    (it stays in poolbench's own file and in the benchstat export).
    """
    import pyperf

    meta = result.metadata
    common = {
        "python_version": str(meta.get("python_version", "")),
        "cpu_count": int(meta.get("cpu_count") or 1),
        "hostname": str(meta.get("hostname", "")),
        "platform": str(meta.get("platform", "")),
        "cpu_model_name": str(meta.get("cpu_model", "")),
    }
    common = {k: v for k, v in common.items() if v != ""}
    benchmarks = []
    for cell in result.cells:
        if cell.status != "ok" or not cell.runs:
            continue
        name = _bench_name(cell)
        runs = []
        for run in cell.runs:
            values = [v * 1e-9 for v in run.values if v > 0]
            if not values:
                continue
            run_meta = {**common, "name": name, "unit": "second", "loops": run.loops}
            warmups = [(run.loops, w * 1e-9) for w in run.warmups if w > 0]
            runs.append(
                pyperf.Run(values, warmups=warmups or None, metadata=run_meta, collect_metadata=False)
            )
        if runs:
            benchmarks.append(pyperf.Benchmark(runs))
        counts = figures(cell.instructions)
        for metric, value in (
            (("instructions", counts.Ir), ("est-cycles", counts.est_cycles)) if counts else ()
        ):
            if value > 0:  # pyperf takes values above zero only
                meta = {**common, "name": f"{name}/{metric}", "unit": "integer", "loops": 1}
                counted = [pyperf.Run([value], metadata=meta, collect_metadata=False)]
                benchmarks.append(pyperf.Benchmark(counted))
        allocs = [k.allocs_per_op for k in cell.counted]
        if allocs and all(a > 0 for a in allocs):
            alloc_meta = {**common, "name": f"{name}/allocs", "unit": "integer", "loops": 1}
            alloc_runs = [pyperf.Run([a], metadata=alloc_meta, collect_metadata=False) for a in allocs]
            benchmarks.append(pyperf.Benchmark(alloc_runs))
    if not benchmarks:
        raise ResultFileError("nothing to export: the result has no measured cell")
    suite = pyperf.BenchmarkSuite(benchmarks)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pyperf.json"
        suite.dump(str(path))
        return path.read_text(encoding="utf-8")
