"""How good is `poolbench compare --metric instructions` as a gate? False alarms on identical code
and detection of small injected regressions, over the default matrix's single-thread cells.

    python benchmarks/instructions_gate.py [--pairs 20] [--out-dir /tmp/poolbench-instr-gate]

Runs pairs+1 plain results of `poolbench run --quick --instructions -t 1` over the four built-in
scenarios (pools none,sync) plus the `gate-records` scenario of benchmarks/gate_scenarios (a
record filled 10 times an op), and 2*pairs runs of `gate-records` alone with a regression
injected: +2% instructions per op (a spin whose length is set once, from three counts: 2% of the
larger of the two cells, so neither gets less), or one extra allocation per op. Then, with the
default threshold (1%):

* A/A: plain run i against plain run i+1, over the 8 built-in cells;
* injected: plain run i against plain run i+1 with its gate-record cells replaced by an injected
  run's, over all 10 cells.

Prints how many compares failed on instructions, how many injected cells were flagged, the
injected change as counted, and the spread of the cells counted more than once (threads).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from poolbench import storage
from poolbench.compare import compare_results
from poolbench.discovery import discover
from poolbench.instructions import count_per_op

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from gate import BUILTINS, injected, only, run  # noqa: E402

GATE = "gate-records"

METRICS = ("instructions",)
COUNTED = ["-t", "1", "--instructions"]
"""gate.run adds --quick and the gate scenarios' folder."""


def spins_for_2_percent() -> int:
    """The spin that adds 2% to the larger of the gate cells, from counts at 0, 10 and 40 spins
    (a spin's call costs instructions of its own, beside each iteration)."""
    ((ref, cls),) = discover([HERE / "gate_scenarios"]).lookup([GATE])

    def counted(spins: int) -> float:
        os.environ["POOLBENCH_GATE_INJECT"] = "work" if spins else ""
        os.environ["POOLBENCH_GATE_SPINS"] = str(spins)
        return max(r.counts.Ir for r in count_per_op(ref, cls.default_params(), ["none", "sync"]))

    base, ten, forty = counted(0), counted(10), counted(40)
    os.environ.pop("POOLBENCH_GATE_INJECT")
    os.environ.pop("POOLBENCH_GATE_SPINS")
    per_spin = (forty - ten) / 30
    call = ten - base - 10 * per_spin
    return max(1, math.ceil((0.02 * base - call) / per_spin))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--out-dir", type=Path, default=Path(tempfile.gettempdir()) / "poolbench-instr-gate")
    args = parser.parse_args()
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    spins_file = out_dir / "spins.txt"  # kept with the runs it made
    if not spins_file.exists():
        spins_file.write_text(f"{spins_for_2_percent()}\n")
    spins = int(spins_file.read_text())
    plain = [
        storage.load(run(out_dir / f"plain-{i:02}.json", "", [*BUILTINS, GATE, *COUNTED]))
        for i in range(args.pairs + 1)
    ]
    work = [
        storage.load(run(out_dir / f"work-{i:02}.json", "work", [GATE, *COUNTED], spins))
        for i in range(args.pairs)
    ]
    alloc = [
        storage.load(run(out_dir / f"alloc-{i:02}.json", "alloc", [GATE, *COUNTED]))
        for i in range(args.pairs)
    ]
    builtins = set(BUILTINS)
    cells = len(only(plain[0], builtins).cells)
    print(f"{args.pairs} compares each, --metric instructions at its default threshold (1%), --quick -t 1;")
    print(f"A/A over the default matrix's {cells} single-thread cells, injected regressions in the "
          f"{GATE} cells of a {len(plain[0].cells)}-cell matrix ({spins} spins an op for +2%)\n")  # fmt: skip
    print("| comparison | compares that failed | injected cells flagged | injected change as counted |")
    print("|---|--:|--:|---|")
    studies = {
        "A/A: identical code": [(only(a, builtins), only(b, builtins)) for a, b in itertools.pairwise(plain)],
        "+2% work per op": [
            (a, injected(b, w)) for (a, b), w in zip(itertools.pairwise(plain), work, strict=False)
        ],
        "+1 allocation per op": [
            (a, injected(b, x)) for (a, b), x in zip(itertools.pairwise(plain), alloc, strict=False)
        ],
    }
    for name, pairs in studies.items():
        failed = flagged = injected_cells = 0
        ratios = []
        for base, cand in pairs:
            comparison = compare_results(base, cand, metrics=METRICS)
            failed += comparison.failing
            for cell in comparison.cells:
                if cell.base.scenario != GATE:
                    continue
                injected_cells += 1
                for m in cell.changes:
                    if m.metric == "instructions" and m.ratio:
                        ratios.append(m.ratio - 1)
                flagged += any(c is cell for c, _ in comparison.regressions)
        hit = "-" if name.startswith("A/A") else f"{flagged} / {injected_cells}"
        change = f"{min(ratios):+.2%} to {max(ratios):+.2%}" if ratios and not name.startswith("A/A") else "-"
        print(f"| {name} | {failed} / {len(pairs)} | {hit} | {change} |")
    spreads = sorted(
        (c.instructions or {}).get("spread", 0.0)
        for r in plain
        for c in r.cells
        if (c.instructions or {}).get("repeats", 1) > 1
    )
    if spreads:
        print(f"\ncells counted twice (operations on several threads): {len(spreads)}, spread of their repeats "
              f"median {spreads[len(spreads) // 2]:.3%}, max {spreads[-1]:.3%}")  # fmt: skip
    differ = 0
    for a, b in itertools.pairwise(plain):
        for ca, cb in zip(only(a, builtins).cells, only(b, builtins).cells, strict=True):
            ia, ib = ca.instructions or {}, cb.instructions or {}
            differ += ia.get("Ir") != ib.get("Ir")
    print(f"A/A cell pairs whose instructions per op differ at all: {differ} / {args.pairs * cells}")
    print(f"\n{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
