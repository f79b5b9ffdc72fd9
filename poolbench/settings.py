"""How hard to measure: the settings of each mode. The parent and the workers both read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Settings:
    """``poolbench run --quick/--rigorous`` pick one of :data:`MODES`.

    The unit of replication is the worker process: values taken in one process share its heap
    layout, its calibration and its moment, so they are not independent samples. The budget
    therefore buys processes first (``processes``) and values per process second.
    """

    processes: int  # worker processes per (none, pool) pair
    values: int  # timed values per strategy per process
    warmups: int
    min_time: float  # seconds per value
    latency_steps: int  # at most this many timed steps per thread
    gc_values: int  # values' worth of operations in the GC pass
    count_ops: int  # operations per thread counted by memray (rounded up to whole batches)
    count_processes: int = 2  # how many of a pair's processes also count allocations
    extra_processes: int = 0  # more processes, at most, for a pair whose processes disagree

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


MODES = {
    "quick": Settings(processes=6, values=4, warmups=1, min_time=0.01, latency_steps=100,
                      gc_values=2, count_ops=200, count_processes=2, extra_processes=4),
    "default": Settings(processes=10, values=6, warmups=1, min_time=0.04, latency_steps=300,
                        gc_values=3, count_ops=500, count_processes=3, extra_processes=6),
    "rigorous": Settings(processes=20, values=8, warmups=2, min_time=0.1, latency_steps=1000,
                         gc_values=5, count_ops=1000, count_processes=4, extra_processes=10),
}  # fmt: skip
SMOKE = Settings(processes=1, values=3, warmups=0, min_time=0.001, latency_steps=5, gc_values=1,
                 count_ops=10, count_processes=1, extra_processes=0)  # fmt: skip
"""Not a mode for measuring: the fastest settings that still run every pass (tests use it)."""
