"""Instructions and simulated cache misses per operation, counted under Valgrind's cachegrind.

Counted, not timed: a Python process run under ``valgrind --tool=cachegrind`` executes the same
instructions every time for the same binary, inputs, hash seed and heap layout, whatever else the
machine does. A figure per operation comes by difference: the same child (load the scenario, set
it up, build one strategy, warm it, then run ``n`` operations) is counted at two operation counts,
and ``(count(n2) - count(n1)) / (n2 - n1)`` leaves out every one-time cost (the interpreter's
start, imports, setup, the warm-up, teardown): they are the same in both processes.

The cache figures are cachegrind's simulation (first level and last level, its default geometry
for this machine), and the estimated cycles follow KCachegrind's documented cost model:
``Ir + 10 x (first-level misses) + 100 x (last-level misses)``.

A single thread only: Valgrind runs one thread at a time, so contention and a pool's waits are
invisible under it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import PoolbenchError, UsageError
from .loading import ScenarioRef

EVENTS = ("Ir", "I1mr", "ILmr", "Dr", "D1mr", "DLmr", "Dw", "D1mw", "DLmw")
"""cachegrind's events with ``--cache-sim=yes``, in the order of its ``summary:`` line."""
L1_COST = 10
LL_COST = 100
"""KCachegrind's cycle estimate: a first-level miss costs 10 cycles, a last-level miss 100."""
HASH_SEED = "0"
"""Every counted process hashes alike (PYTHONHASHSEED): dict and set layouts, and so the count."""


class ValgrindMissing(UsageError):
    def __init__(self) -> None:
        super().__init__(
            "counting instructions needs Valgrind, which is not installed",
            hint="apt-get install valgrind (Debian, Ubuntu), dnf install valgrind (Fedora), brew install valgrind",
        )


class CountFailed(PoolbenchError):
    """A counted process that did not finish (the scenario raised, Valgrind failed)."""


@dataclass(frozen=True)
class Counts:
    """cachegrind's totals, or per-operation figures (floats) after :meth:`per_op`."""

    Ir: float
    I1mr: float
    ILmr: float
    Dr: float
    D1mr: float
    DLmr: float
    Dw: float
    D1mw: float
    DLmw: float

    @property
    def l1_misses(self) -> float:
        return self.I1mr + self.D1mr + self.D1mw

    @property
    def ll_misses(self) -> float:
        return self.ILmr + self.DLmr + self.DLmw

    @property
    def est_cycles(self) -> float:
        return self.Ir + L1_COST * self.l1_misses + LL_COST * self.ll_misses

    def minus(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, e) - getattr(other, e) for e in EVENTS))

    def per_op(self, ops: int) -> Counts:
        return Counts(*(getattr(self, e) / ops for e in EVENTS))

    def to_json(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def valgrind() -> str:
    """The path of ``valgrind``, or :class:`ValgrindMissing` (one line, exit 2)."""
    found = shutil.which("valgrind")
    if found is None:
        raise ValgrindMissing()
    return found


def parse(text: str) -> Counts:
    """The totals of a cachegrind output file (its ``events:`` and ``summary:`` lines)."""
    events: list[str] = []
    summary: list[str] = []
    for line in text.splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            summary = line.split()[1:]
    if not events or len(events) != len(summary):
        raise CountFailed("cachegrind wrote no summary (was --cache-sim=yes given?)")
    found = dict(zip(events, (float(v) for v in summary), strict=True))
    missing = [e for e in EVENTS if e not in found]
    if missing:
        raise CountFailed(f"cachegrind counted no {', '.join(missing)} (was --cache-sim=yes given?)")
    return Counts(*(found[e] for e in EVENTS))


def count_process(
    ref: ScenarioRef, params: dict[str, Any], strategy: str, ops: int, *, python: str = sys.executable,
    timeout: float = 600.0,
) -> Counts:  # fmt: skip
    """Totals of one counted child: the scenario set up, ``strategy`` built and warmed, ``ops``
    operations run."""
    tool = valgrind()
    job = json.dumps({"scenario": ref.to_json(), "params": params, "strategy": strategy, "ops": ops})
    with tempfile.TemporaryDirectory(prefix="poolbench-instr-") as tmp:
        out = Path(tmp) / "cachegrind.out"
        cmd = [tool, "--tool=cachegrind", "--cache-sim=yes", f"--cachegrind-out-file={out}",
               python, "-P", "-m", "poolbench._counted_child", job]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": HASH_SEED}  # pymalloc kept: it is what pooling saves work in
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            raise CountFailed(
                f"the counted process of {ref.name} pool={strategy} took over {timeout:g} s"
            ) from None
        if done.returncode != 0 or not out.exists():
            lines = [line for line in done.stderr.splitlines() if line and not line.startswith("==")]
            raise CountFailed(
                f"the counted process of {ref.name} pool={strategy} failed: "
                + (lines[-1] if lines else f"exit status {done.returncode}")
            )
        return parse(out.read_text())


@dataclass(frozen=True)
class PerOp:
    """One strategy's figures per operation, and the operation counts they came from."""

    strategy: str
    counts: Counts
    ops: tuple[int, int]


def count_per_op(
    ref: ScenarioRef, params: dict[str, Any], strategies: Sequence[str], ops: tuple[int, int] = (1000, 3000),
    *, python: str = sys.executable, timeout: float = 600.0,
) -> list[PerOp]:  # fmt: skip
    """Each strategy's counts per operation, by difference of two counted processes."""
    low, high = ops
    if not 0 < low < high:
        raise UsageError(f"operation counts must grow: {low} then {high}")
    found = []
    for name in strategies:
        first = count_process(ref, params, name, low, python=python, timeout=timeout)
        second = count_process(ref, params, name, high, python=python, timeout=timeout)
        per_op = second.minus(first).per_op(high - low)
        # A count that does not grow with the operations (misses of a warm loop) can differ by a
        # few in either direction between the two processes: below zero, it reads 0.
        found.append(PerOp(name, Counts(*(max(0.0, getattr(per_op, e)) for e in EVENTS)), ops))
    return found


def figures(counts: dict[str, float] | None) -> Counts | None:
    """A cell's stored counts (:attr:`poolbench.result.Cell.instructions`) as :class:`Counts`."""
    if not counts or any(e not in counts for e in EVENTS):
        return None
    return Counts(*(counts[e] for e in EVENTS))
