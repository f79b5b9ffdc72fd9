"""Instruction counts under Valgrind (``poolbench.instructions``): repeatable, and sensitive.

    python benchmarks/instructions.py [--repeats 5]

1. Repeatability: bytes-buffer (64 KiB) with none and sync, counted ``--repeats`` times in fresh
   processes: instructions, first- and last-level misses and estimated cycles per op, and their
   spread (0 where every count agrees).
2. Sensitivity: a spin of 1,000 iterations an operation against 1,020 (+2% work) and against the
   same spin plus one allocation an operation, by the ratio of instructions per op.
3. What the pool saves at 64 KiB: instructions and misses of none minus sync.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from poolbench.discovery import discover
from poolbench.instructions import OPS, Counts, count_per_op

SCENARIO = '''
from poolbench import Scenario


class Spin(Scenario):
    """A spin of `spins` iterations an operation, and `allocs` fresh bytearrays."""

    name = "spin"
    params = {"spins": 1000, "allocs": 0}

    def new(self):
        return bytearray(64)

    def use(self, buf):
        n = self.params["spins"]
        while n:
            n -= 1
        for _ in range(self.params["allocs"]):
            self.keep = bytearray(8)
'''


def spread(values: list[float]) -> str:
    low, high = min(values), max(values)
    return "0 (every count equal)" if low == high else f"{(high - low) / statistics.median(values):.4%}"


def row(name: str, c: Counts) -> str:
    return f"| {name} | {c.Ir:,.1f} | {c.l1_misses:,.2f} | {c.ll_misses:,.2f} | {c.est_cycles:,.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    started = time.monotonic()
    found = discover(())
    ((ref, cls),) = found.lookup(["bytes-buffer"])
    runs = [count_per_op(ref, cls.default_params(), ["none", "sync"]) for _ in range(args.repeats)]
    low, high = OPS
    print(
        f"bytes-buffer size=64KiB, {args.repeats} counts in fresh processes ({low} and {high} operations each)\n"
    )
    print("| strategy | instr/op | L1 miss/op | LL miss/op | est. cycles/op |")
    print("|---|--:|--:|--:|--:|")
    for i, name in enumerate(("none", "sync")):
        counts = [r[i].counts for r in runs]
        print(row(name, counts[0]))
        print(f"|  spread over {args.repeats} | {spread([c.Ir for c in counts])} | "
              f"{spread([c.l1_misses for c in counts])} | {spread([c.ll_misses for c in counts])} | "
              f"{spread([c.est_cycles for c in counts])} |")  # fmt: skip
    none, sync = runs[0][0].counts, runs[0][1].counts
    print(f"\nsaved by the pool per op: {none.Ir - sync.Ir:,.0f} instructions, "
          f"{none.l1_misses - sync.l1_misses:,.0f} L1 misses, {none.ll_misses - sync.ll_misses:,.1f} LL misses, "
          f"{none.est_cycles - sync.est_cycles:,.0f} est. cycles")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "spin.py").write_text(SCENARIO)
        spin = discover([Path(tmp)])
        ((ref, cls),) = spin.lookup(["spin"])
        base = count_per_op(ref, {**cls.default_params()}, ["sync"])[0].counts
        work = count_per_op(ref, {**cls.default_params(), "spins": 1020}, ["sync"])[0].counts
        alloc = count_per_op(ref, {**cls.default_params(), "allocs": 1}, ["sync"])[0].counts
    print(f"\nspin 1,000 an op: {base.Ir:,.1f} instr/op; +2% spins: {work.Ir:,.1f} ({work.Ir / base.Ir - 1:+.2%}); "
          f"+1 allocation: {alloc.Ir:,.1f} ({alloc.Ir / base.Ir - 1:+.2%})")  # fmt: skip
    print(f"\n{time.monotonic() - started:.0f} s")
    sys.exit(0)


if __name__ == "__main__":
    main()
