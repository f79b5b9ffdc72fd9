"""Precision per second: what a run of the default matrix costs and how settled its verdicts are.

    python benchmarks/precision.py [--runs 5] [--mode quick] [--null 10] [--out-dir /tmp/poolbench-precision]

Runs the default matrix (the four built-ins, pools none,sync, threads 1,2,4) ``--runs`` times in
one mode, one run after another, and prints per run its wall time and the median and
90th-percentile half-width of the speedup (pooled cells) and of time per op (every cell); then,
per pooled cell, its verdict in every run and how many runs agree with the most common one; the
"no difference" verdicts whose interval is wider than the 5% floor (there must be none); and the
A/A compares of consecutive runs that failed the gate. With ``--null N``, N runs of `gate-same`
(benchmarks/gate_scenarios: identical work pooled or not, a true speedup of 1) count how often a
verdict claims a difference that is not there. Result files are kept in ``--out-dir`` and reused
by a second call; the injected-regression study is ``benchmarks/gate.py``.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from poolbench import storage
from poolbench.compare import compare_results
from poolbench.report import CellReport, report
from poolbench.result import Result
from poolbench.verdict import FLOOR

HERE = Path(__file__).parent
BUILTINS = ["bytes-buffer", "db-connections", "json-struct", "worker-tasks"]


def run(out: Path, mode: str, args: list[str]) -> tuple[Result, float]:
    """One result file and the wall seconds of the command that made it (kept beside it)."""
    clock = out.with_suffix(".seconds")
    if not out.exists():
        cmd = [sys.executable, "-m", "poolbench", "run", *args, f"--{mode}", "-o", str(out),
               "--scenarios-dir", str(HERE / "gate_scenarios")]  # fmt: skip
        started = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        clock.write_text(f"{time.monotonic() - started:.2f}\n")
    return storage.load(out), float(clock.read_text())


def half_width(low: float, high: float, mid: float) -> float:
    return (high - low) / 2 / mid


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def name(r: CellReport) -> str:
    return f"{r.cell.scenario} t={r.cell.threads}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", choices=("quick", "default", "rigorous"), default="quick")
    parser.add_argument("--null", type=int, default=0, help="runs of gate-same (a true speedup of 1)")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/poolbench-precision"))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    runs = [run(args.out_dir / f"{args.mode}-{i:02}.json", args.mode, BUILTINS) for i in range(args.runs)]

    print(f"{args.runs} runs of the default matrix, --{args.mode}\n")
    print("| run | wall | processes | speedup half-width median / p90 | time half-width median / p90 |")
    print("|--:|--:|--:|--:|--:|")
    verdicts: dict[str, list[str]] = {}
    too_wide = 0
    walls = []
    for i, (result, wall) in enumerate(runs):
        reports = report(result)
        pooled = [r for r in reports if r.speedup]
        sw = [half_width(r.speedup.ci_low, r.speedup.ci_high, r.speedup.ratio) for r in pooled if r.speedup]
        tw = [half_width(r.time.ci_low, r.time.ci_high, r.time.median) for r in reports if r.time]
        processes = sum(len(c.runs) for c in result.cells if c.pool != "none")
        walls.append(wall)
        print(f"| {i} | {wall:.1f} s | {processes} | {quantile(sw, 0.5):.1%} / {quantile(sw, 0.9):.1%} "
              f"| {quantile(tw, 0.5):.1%} / {quantile(tw, 0.9):.1%} |")  # fmt: skip
        for r in pooled:
            assert r.speedup is not None
            verdicts.setdefault(name(r), []).append(r.speedup.verdict)
            wider = r.speedup.ci_low < 1 / (1 + FLOOR) or r.speedup.ci_high > 1 + FLOOR
            too_wide += r.speedup.verdict == "same" and wider
    print(f"\nwall time: median {quantile(walls, 0.5):.1f} s, min {min(walls):.1f} s, max {max(walls):.1f} s")
    print("\n| cell | verdicts | agreeing |")
    print("|---|---|--:|")
    settled = 0
    for cell, found in verdicts.items():
        top, n = Counter(found).most_common(1)[0]
        settled += n >= len(found) - 1
        print(f"| {cell} | {', '.join(found)} | {n} / {len(found)} ({top}) |")
    print(f"\ncells whose verdict agrees in all runs but at most one: {settled} / {len(verdicts)}")
    print(f'"no difference" on an interval wider than the {FLOOR:.0%} floor: {too_wide}')
    pairs = list(itertools.pairwise(r for r, _ in runs))
    failed = Counter()
    for a, b in pairs:
        comparison = compare_results(a, b)
        failed.update(
            {m.metric for _, m in comparison.regressions} | ({"broken"} if comparison.broken else set())
        )
        failed["any"] += comparison.failing
    print(f"A/A compares of consecutive runs that failed the gate: {failed.pop('any', 0)} / {len(pairs)}"
          + (f" ({', '.join(f'{k} {v}' for k, v in sorted(failed.items()))})" if failed else ""))  # fmt: skip

    if args.null:
        null = [run(args.out_dir / f"{args.mode}-same-{i:02}.json", args.mode, ["gate-same"])[0]
                for i in range(args.null)]  # fmt: skip
        found = Counter(r.speedup.verdict for result in null for r in report(result) if r.speedup)
        covered = sum(
            r.speedup.ci_low <= 1 <= r.speedup.ci_high for result in null for r in report(result) if r.speedup
        )
        total = sum(found.values())
        print(f"\ngate-same (a true speedup of 1), {args.null} runs x 3 thread counts: "
              + ", ".join(f"{v} {k}" for k, v in found.most_common())
              + f"; intervals holding 1: {covered} / {total}")  # fmt: skip


if __name__ == "__main__":
    main()
