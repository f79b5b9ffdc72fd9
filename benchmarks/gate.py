"""How good is `poolbench compare` as a gate, on the default `--quick` matrix? False alarms on
identical code, detection of injected regressions, all measured on this machine with the default
thresholds.

    python benchmarks/gate.py [--pairs 20] [--out-dir /tmp/poolbench-gate] [--matrix default|async|http]

Runs pairs+1 plain results of the default matrix (the four built-in scenarios, pools none,sync,
threads 1,2,4) plus the `gate-record` scenario of benchmarks/gate_scenarios, and 2*pairs runs of
`gate-record` alone at one thread with a regression injected (+30% work per op, or one extra
allocation per op). Then:

* A/A: plain run i against plain run i+1, over the 24 cells of the default matrix;
* injected: plain run i against plain run i+1 with its single-thread `gate-record` cells (none
  and sync) replaced by an injected run's, over all 30 cells, so the injected cells are judged
  with the same multiple-testing adjustment as in a real compare of the whole matrix.

Prints how many compares failed the gate, by metric, and the A/A false alarms that time would
give without normalizing by the reference workload (the figure behind that choice).

``--matrix http`` takes its A/A over the network scenarios (http-buffers and http-client at
their defaults, threads 1,2,4), with the default matrix's injected cells.

``--matrix async`` does the same for asyncio: A/A over the built-in async scenario at its default
concurrency (1,16,128), and the regressions injected into `gate-async` (gate-buffer in a handler
that awaits once per op) at one task.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import itertools
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from poolbench import storage
from poolbench.compare import Comparison, compare_results
from poolbench.result import Result

HERE = Path(__file__).parent
BUILTINS = ["bytes-buffer", "db-connections", "json-struct", "worker-tasks"]
GATE = "gate-record"
MATRICES = {
    # name: (the A/A scenarios, the injected scenario, the option that runs it alone at one member)
    "default": (BUILTINS, GATE, ["-t", "1"]),
    "async": (["async-buffer"], "gate-async", ["-c", "1"]),
    # the network scenarios (run only when named): a loopback server, real sockets
    "http": (["http-buffers", "http-client"], GATE, ["-t", "1"]),
}


def run(out: Path, inject: str, args: list[str], spins: int = 0) -> Path:
    """One result file (kept: rerunning the script reuses what exists)."""
    if not out.exists():
        env = {**os.environ, "POOLBENCH_GATE_INJECT": inject, "POOLBENCH_GATE_SPINS": str(spins)}
        cmd = [sys.executable, "-m", "poolbench", "run", *args, "--quick",
               "--scenarios-dir", str(HERE / "gate_scenarios"), "-o", str(out)]  # fmt: skip
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return out


def gate_module() -> Any:
    """benchmarks/gate_scenarios/gate.py, loaded by its path."""
    spec = importlib.util.spec_from_file_location("gate_scenarios", HERE / "gate_scenarios" / "gate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def only(result: Result, keep: set[str]) -> Result:
    out = copy.copy(result)
    out.cells = [c for c in result.cells if c.scenario in keep]
    return out


def injected(plain: Result, bad: Result) -> Result:
    """``plain`` with its single-thread gate cells replaced by ``bad``'s."""
    out = copy.copy(plain)
    replaced = {c.key: c for c in bad.cells}
    out.cells = [replaced.get(c.key, c) for c in plain.cells]
    return out


def failed_metrics(comparison: Comparison) -> Counter[str]:
    found = Counter(m.metric for _, m in comparison.regressions)
    found.update("broken" for _ in comparison.broken)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/poolbench-gate"))
    parser.add_argument("--matrix", choices=sorted(MATRICES), default="default")
    args = parser.parse_args()
    scenarios, gate, alone = MATRICES[args.matrix]
    out_dir = args.out_dir if args.matrix == "default" else args.out_dir / args.matrix
    out_dir.mkdir(parents=True, exist_ok=True)
    plain_files = [run(out_dir / f"plain-{i:02}.json", "", [*scenarios, gate]) for i in range(args.pairs + 1)]
    # One spin count for the whole study: a real regression adds the same work to every process.
    spins_file = out_dir / "spins.txt"  # kept with the runs it made
    if not spins_file.exists():
        spins_file.write_text(f"{gate_module().spins_for_30_percent(gate)}\n")
    spins = int(spins_file.read_text())
    work_files = [
        run(out_dir / f"work-{i:02}.json", "work", [gate, *alone], spins) for i in range(args.pairs)
    ]
    alloc_files = [run(out_dir / f"alloc-{i:02}.json", "alloc", [gate, *alone]) for i in range(args.pairs)]
    plain = [storage.load(p) for p in plain_files]
    work = [storage.load(p) for p in work_files]
    alloc = [storage.load(p) for p in alloc_files]
    builtins = set(scenarios)

    cells = len(only(plain[0], builtins).cells)
    print(
        f"{args.pairs} compares each, default thresholds, --quick; A/A over the default matrix ({cells} cells),"
    )
    print(f"injected regressions in the single-thread {gate} cells of a {len(plain[0].cells)}-cell matrix\n")
    print("| comparison | compares that failed the gate | by metric | injected cell flagged |")
    print("|---|--:|---|--:|")
    studies = {
        "A/A: identical code": [
            (only(a, builtins), only(b, builtins), None) for a, b in itertools.pairwise(plain)
        ],
        "+30% work per op": [
            (a, injected(b, w), "time") for (a, b), w in zip(itertools.pairwise(plain), work, strict=False)
        ],
        "+1 allocation per op": [
            (a, injected(b, x), "allocs") for (a, b), x in zip(itertools.pairwise(plain), alloc, strict=False)
        ],
    }
    for name, pairs in studies.items():
        failed = flagged = 0
        by_metric: Counter[str] = Counter()
        for base, cand, target in pairs:
            comparison = compare_results(base, cand)
            found = failed_metrics(comparison)
            failed += comparison.failing
            by_metric.update({m: 1 for m in found})
            if target is not None:
                flagged += any(
                    c.base.scenario == gate and c.base.members == 1 and m.metric == target
                    for c, m in comparison.regressions
                )
        metrics = ", ".join(f"{m} {n}" for m, n in sorted(by_metric.items())) or "-"
        hit = "-" if name.startswith("A/A") else f"{flagged} / {len(pairs)}"
        print(f"| {name} | {failed} / {len(pairs)} | {metrics} | {hit} |")

    aa = [(only(a, builtins), only(b, builtins)) for a, b in itertools.pairwise(plain)]
    for threads in ("1", ">1"):

        def cells_of(r: Result, threads: str = threads) -> Result:
            out = copy.copy(r)
            out.cells = [c for c in r.cells if (c.members == 1) == (threads == "1")]
            return out

        norm = sum(
            bool(compare_results(cells_of(a), cells_of(b), metrics=("time",)).regressions) for a, b in aa
        )
        raw = sum(
            bool(compare_results(cells_of(a), cells_of(b), metrics=("time",), normalize=False).regressions)
            for a, b in aa
        )
        print(
            f"\nA/A false alarms on time alone, threads {threads}: normalized {norm} / {len(aa)}, raw {raw} / {len(aa)}"
        )
    detect_norm = sum(
        bool(compare_results(a, injected(b, w), metrics=("time",)).regressions)
        for (a, b), w in zip(itertools.pairwise(plain), work, strict=False)
    )
    detect_raw = sum(
        bool(compare_results(a, injected(b, w), metrics=("time",), normalize=False).regressions)
        for (a, b), w in zip(itertools.pairwise(plain), work, strict=False)
    )
    print(
        f"+30% work caught by time alone: normalized {detect_norm} / {len(work)}, raw {detect_raw} / {len(work)}"
    )
    achieved = sorted(
        m.ratio
        for (a, b), w in zip(itertools.pairwise(plain), work, strict=False)
        for c in compare_results(a, injected(b, w), metrics=("time",)).cells
        if c.base.scenario == gate and c.base.members == 1
        for m in c.changes
        if m.ratio
    )
    if achieved:
        print(f"the injected work as measured (time ratio of the injected cells, {spins} spins an op): "
              f"median {achieved[len(achieved) // 2]:.2f}x, {achieved[0]:.2f}-{achieved[-1]:.2f}x")  # fmt: skip
    detectable = []
    for a, b in aa:
        for cell in compare_results(a, b).cells:
            for m in cell.changes:
                if m.metric == "time" and m.detectable is not None and cell.base.members == 1:
                    detectable.append(m.detectable)
    if detectable:
        detectable.sort()
        print(
            f"smallest detectable time change, single-thread cells, A/A compares: median {detectable[len(detectable) // 2]:.0%}, "
            f"90th percentile {detectable[int(0.9 * (len(detectable) - 1))]:.0%}"
        )


if __name__ == "__main__":
    main()
