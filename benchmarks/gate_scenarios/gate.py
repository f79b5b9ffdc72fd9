"""Scenarios for benchmarks/gate.py: regressions injected on demand.

POOLBENCH_GATE_INJECT=work  adds 30% of work to every operation: a spin of POOLBENCH_GATE_SPINS
                            iterations (benchmarks/gate.py sets it once for a whole study, with
                            :func:`spins_for_30_percent`), else one calibrated in setup;
POOLBENCH_GATE_INJECT=alloc adds one allocation to every operation. Unset: the plain scenario.
The cells keep the same names and parameters either way, so compare matches them.

A spin calibrated in each worker's setup is a different regression in every process (its count
follows the machine's speed at that moment: injected runs read 20.7-27.1 where their bases read
16.8-17.8), which no real regression is: a code change adds the same work to every process.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from poolbench import Scenario

INJECT = os.environ.get("POOLBENCH_GATE_INJECT", "")
SPINS = int(os.environ.get("POOLBENCH_GATE_SPINS", "0"))


def _spin(n: int) -> None:
    # A while loop over small ints allocates nothing (ints below 257 are cached), so the
    # injected work adds time only, not allocations.
    while n:
        n -= 1


def _spins_for(per_op: float, *, cap: int) -> int:
    """The spin count that adds 30% to an operation of ``per_op`` seconds."""
    start = time.perf_counter()
    for _ in range(10_000):
        _spin(100)
    per_spin = (time.perf_counter() - start) / 1_000_000
    return min(cap, max(1, round(0.30 * per_op / per_spin)))


class _Injected(Scenario):
    def work(self, obj: Any) -> None:
        raise NotImplementedError

    def setup(self) -> None:
        self.extra = 0
        self.keep: object = None
        if INJECT == "work":
            self.extra = SPINS or self.spins()

    def spins(self) -> int:
        """The spin count that adds 30% to one operation, timed here and now."""
        obj = self.new()
        start = time.perf_counter()
        for _ in range(20_000):
            self.work(obj)
        return _spins_for((time.perf_counter() - start) / 20_000, cap=256)

    def use(self, obj: Any) -> None:
        self.work(obj)
        if self.extra:
            _spin(self.extra)
        if INJECT == "alloc":
            self.keep = object()


class GateBuffer(_Injected):
    """Copy 4 KiB into a buffer."""

    name = "gate-buffer"
    params = {"size": 4096}

    def new(self) -> bytearray:
        return bytearray(self.params["size"])

    def work(self, buf: bytearray) -> None:
        with memoryview(buf) as view:
            view[:] = self.payload

    def setup(self) -> None:
        self.payload = bytes(self.params["size"])
        super().setup()


class GateRecord(_Injected):
    """Fill a 6-field record."""

    name = "gate-record"

    def new(self) -> dict[str, Any]:
        return {"id": 0, "user": "", "score": 0.0, "tags": [0, 0, 0], "a": None, "b": None}

    def work(self, rec: dict[str, Any]) -> None:
        rec["id"] = 7
        rec["user"] = "ada"
        rec["score"] = 0.5
        rec["tags"][:] = (1, 2, 3)
        rec["a"] = rec["b"] = None


class GateRecords(GateRecord):
    """gate-record's work `reps` times an operation: an operation large enough (tens of thousands of
    instructions) that a spin adds 2% to it in steps of 0.1% (benchmarks/instructions_gate.py)."""

    name = "gate-records"
    params = {"reps": 10}

    def work(self, rec: dict[str, Any]) -> None:
        for _ in range(self.params["reps"]):
            GateRecord.work(self, rec)


class GateSame(Scenario):
    """The same work whether pooled or not: a speedup of exactly 1, for judging verdicts.

    ``run`` ignores the pool it is given, so ``none`` and every pool time identical code; a run
    may call this cell "no difference" or "inconclusive", and "wins" or "loses" only by chance
    (at most 5% of runs, if the intervals are right)."""

    name = "gate-same"

    def new(self) -> dict[str, Any]:
        return {}

    def use(self, obj: Any) -> None:
        pass

    def run(self, n: int, get: Any, put: Any) -> None:
        for i in range(n):
            rec = {"id": i, "user": "ada", "tags": [1, 2, 3]}
            rec["score"] = len(rec["tags"]) * 0.5


class GateAsync(GateBuffer):
    """gate-buffer in an asyncio handler: await once (a yield to the loop), then the same copy.
    The injected work is 30% of the whole operation, the trip through the loop included."""

    name = "gate-async"

    async def setup(self) -> None:  # type: ignore[override]
        self.payload = bytes(self.params["size"])
        self.extra = 0
        self.keep: object = None
        if INJECT == "work":
            self.extra = SPINS or await self.spins_async()

    async def spins_async(self) -> int:
        obj = self.new()
        start = time.perf_counter()
        for _ in range(20_000):
            await asyncio.sleep(0)
            self.work(obj)
        return _spins_for((time.perf_counter() - start) / 20_000, cap=1024)

    async def use(self, obj: Any) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        GateBuffer.use(self, obj)


def spins_for_30_percent(name: str, *, times: int = 7) -> int:
    """The median over ``times`` calibrations of the spin that adds 30% to an operation of the
    gate scenario ``name``: one count for every process of a study."""
    scenario = {c.name: c for c in (GateRecord, GateAsync)}[name]()
    found = []
    for _ in range(times):
        if isinstance(scenario, GateAsync):
            loop = asyncio.new_event_loop()
            scenario.payload = bytes(scenario.params["size"])
            found.append(loop.run_until_complete(scenario.spins_async()))
            loop.close()
        else:
            found.append(scenario.spins())
    return sorted(found)[len(found) // 2]
