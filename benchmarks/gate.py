"""How good is `poolbench compare` as a gate? False alarms on identical code, detection of
injected regressions, all measured on this machine with the default thresholds and --quick.

    python benchmarks/gate.py [--pairs 20] [--out-dir /tmp/poolbench-gate]

Runs 2*pairs+1 baseline-shaped results: pairs+1 plain runs (A/A pairs: run i vs run i+1), pairs
runs with +30% work per operation, pairs runs with one extra allocation per operation, each
compared against a plain run. Prints how many comparisons failed the gate, by metric, and the
A/A false alarms time would give without normalization (the figure behind the choice).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from poolbench import storage
from poolbench.compare import compare_results

HERE = Path(__file__).parent
MATRIX = ["gate-buffer", "gate-record", "--quick", "-t", "1", "--pool", "none,sync"]


def run(out: Path, inject: str, hogs: int = 0) -> Path:
    """One result file (kept: rerunning the script reuses what exists)."""
    if not out.exists():
        env = {**os.environ, "POOLBENCH_GATE_INJECT": inject}
        cmd = [sys.executable, "-m", "poolbench", "run", *MATRIX, "--scenarios-dir", str(HERE / "gate_scenarios"),
               "-o", str(out)]  # fmt: skip
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
        try:
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        finally:
            for p in busy:
                p.kill()
                p.wait()
    return out


def gate(base: Path, cand: Path, metrics: tuple[str, ...] | None = None) -> Counter[str]:
    kwargs = {"metrics": metrics} if metrics else {}
    comparison = compare_results(storage.load(base), storage.load(cand), **kwargs)
    return Counter(m.metric for _, m in comparison.regressions)


def raw_time_alarms(base: Path, cand: Path) -> bool:
    """The same test on raw ns/op (reference timings dropped, so nothing is normalized)."""
    b, c = storage.load(base), storage.load(cand)
    for cell in (*b.cells, *c.cells):
        for r in cell.runs:
            r.reference = []
    return bool(compare_results(b, c, metrics=("time",)).regressions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/poolbench-gate"))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    plain = [run(args.out_dir / f"plain-{i:02}.json", "") for i in range(args.pairs + 1)]
    work = [run(args.out_dir / f"work-{i:02}.json", "work") for i in range(args.pairs)]
    alloc = [run(args.out_dir / f"alloc-{i:02}.json", "alloc") for i in range(args.pairs)]
    loaded = [run(args.out_dir / f"loaded-{i:02}.json", "", hogs=2) for i in range(args.pairs)]

    print(f"{args.pairs} comparisons each, default thresholds, --quick, matrix: {' '.join(MATRIX)}\n")
    print("| comparison | failed the gate | by metric |")
    print("|---|--:|---|")
    for name, pairs in (
        ("A/A: identical code", list(itertools.pairwise(plain))),
        ("+30% work per op", list(zip(plain, work, strict=False))),
        ("+1 allocation per op", list(zip(plain, alloc, strict=False))),
        ("A/A, candidate run beside 2 busy processes", list(zip(plain, loaded, strict=False))),
    ):
        failed = 0
        by_metric: Counter[str] = Counter()
        for base, cand in pairs:
            found = gate(base, cand)
            failed += bool(found)
            by_metric.update({m: 1 for m in found})
        metrics = ", ".join(f"{m} {n}" for m, n in sorted(by_metric.items())) or "-"
        print(f"| {name} | {failed} / {len(pairs)} | {metrics} |")
    aa = list(itertools.pairwise(plain))
    raw = sum(raw_time_alarms(b, c) for b, c in aa)
    normalized = sum(bool(gate(b, c, ("time",))) for b, c in aa)
    print(f"\nA/A false alarms on time alone: normalized by the reference workload {normalized} / {len(aa)}, "
          f"raw ns/op {raw} / {len(aa)}")  # fmt: skip
    busy = list(zip(plain, loaded, strict=False))
    raw_busy = sum(raw_time_alarms(b, c) for b, c in busy)
    norm_busy = sum(bool(gate(b, c, ("time",))) for b, c in busy)
    print(
        f"A/A beside 2 busy processes, time alone: normalized {norm_busy} / {len(busy)}, raw {raw_busy} / {len(busy)}"
    )
    work_pairs = list(zip(plain, work, strict=False))
    raw_detect = sum(raw_time_alarms(b, c) for b, c in work_pairs)
    norm_detect = sum(bool(gate(b, c, ("time",))) for b, c in work_pairs)
    print(
        f"+30% work caught by time alone: normalized {norm_detect} / {len(work_pairs)}, raw {raw_detect} / {len(work_pairs)}"
    )


if __name__ == "__main__":
    main()
