"""How hard to measure: the settings of each mode. The parent and the workers both read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Settings:
    """``poolbench run --quick/--rigorous`` pick one of :data:`MODES`.

    The unit of replication is the worker process: values taken in one process share its heap
    layout, its calibration and its moment, so they are not independent samples. The budget
    therefore buys processes first and values per process second, and spends processes where a
    verdict is still open: every (none, pool) pair gets ``min_processes``, then one more per round
    until its verdict is settled (:func:`poolbench.verdict.settled`) or it has ``max_processes``.
    """

    min_processes: int  # worker processes every (none, pool) pair gets
    max_processes: int  # ... and at most, while its verdict is open
    max_seconds: float  # ... and no more once its timed processes took this long (wall time)
    values: int  # timed values per strategy per process
    warmups: int
    min_time: float  # seconds per value
    latency_steps: int  # at most this many timed steps per thread
    gc_values: int  # values' worth of operations in the GC pass
    count_ops: int  # operations per thread counted by memray (rounded up to whole batches)
    count_processes: int = 2  # counting processes of a pair (processes of their own, nothing timed)
    detail_processes: int = 1  # how many of a pair's processes run the latency and GC/memory passes
    value_seconds: float = 0.0  # fewer values (not under 8) where they would take longer (0: no cap)
    loop: str = "asyncio"  # the event loop of async scenarios (``--loop``): asyncio's own or uvloop
    observe: bool = False  # a size sweep's observed pass: every get and put of a pool timed (Run.acquire)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


MODES = {
    "quick": Settings(min_processes=4, max_processes=10, max_seconds=3.0, values=20, value_seconds=0.5, warmups=1, min_time=0.002,
                      latency_steps=100, gc_values=2, count_ops=200, count_processes=2, detail_processes=1),
    "default": Settings(min_processes=4, max_processes=16, max_seconds=15.0, values=30, value_seconds=2.0, warmups=2, min_time=0.005,
                        latency_steps=300, gc_values=3, count_ops=500, count_processes=3, detail_processes=2),
    "rigorous": Settings(min_processes=6, max_processes=30, max_seconds=60.0, values=40, value_seconds=8.0, warmups=3, min_time=0.01,
                         latency_steps=1000, gc_values=5, count_ops=1000, count_processes=4, detail_processes=3),
}  # fmt: skip
SMOKE = Settings(min_processes=1, max_processes=1, max_seconds=0.0, values=3, warmups=0, min_time=0.001, latency_steps=5,
                 gc_values=1, count_ops=10, count_processes=1, detail_processes=1)  # fmt: skip
"""Not a mode for measuring: the fastest settings that still run every pass (tests use it)."""
