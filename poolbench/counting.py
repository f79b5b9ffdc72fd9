"""The allocation-counting pass inside a worker: allocations and bytes per operation.

Runs after every timed pass, because tracing changes what it traces. Made to give the same count
in every process and every run (a count that moves cannot gate anything):

* **memray, not tracemalloc.** memray with ``trace_python_allocators=True`` records every call to
  Python's object allocator as well as malloc: 72.0 allocations per JSON record, identical in two
  processes. tracemalloc only sees blocks still alive at a snapshot, so it cannot count allocations
  per operation; ``sys.getallocatedblocks()`` deltas count net retained blocks (~0 per op even at
  58 allocations per op). tracemalloc on also slowed these workloads 2.3-27x.
* **Frames made by tracing are subtracted.** memray follows the Python stack with a profile hook,
  and under a profile hook CPython 3.11 materializes a frame object for every Python call (one
  allocation of ~150 bytes that does not exist untraced). :class:`FrameCounter` counts them in a
  second pass with ``sys.setprofile`` and they are taken off.
* **The harness is subtracted**, measured the same way (a null scenario through the same loops).
* **One-time costs are paid before counting.** The first tracker of a process pays setup costs
  (14 allocations / 1,548 B against 9 / 716 B steady), and the tracker keeps data on each code
  object the first time it sees it run (one allocation per function: ``new`` and ``use`` read
  402 instead of 400 allocations over 200 ops). Every counted pass is therefore preceded by a
  short tracked pass of the same code (one batch), whose count is discarded.
* **A warm, quiet steady state.** Each strategy runs its ``n`` operations once untracked (a pool
  fills, caches warm), then again tracked with the collector paused: a full collection empties a
  ``sync`` pool into its victim cache, and whether one fell inside the counted operations depended
  on everything the process did before (json-struct read 51, 54 or 57 allocations per op in three
  runs). Collections are measured by the GC pass; this pass counts what an operation allocates.
* **Synchronization outside the counted region** (:meth:`Team.run_between`): with threads, a
  ``Barrier`` allocates waiter locks in numbers that depend on timing.
"""

from __future__ import annotations

import functools
import gc
import inspect
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .result import AllocStats
from .scenario import Scenario
from .strategies import Put, Strategy, fill
from .timing import Members, round_up, team_for

ALLOCATING = frozenset(
    {"MALLOC", "CALLOC", "REALLOC", "ALIGNED_ALLOC", "MEMALIGN", "POSIX_MEMALIGN", "VALLOC",
     "PVALLOC", "PYMALLOC_MALLOC", "PYMALLOC_CALLOC", "PYMALLOC_REALLOC"}
)  # fmt: skip
"""memray's allocator kinds that hand out memory (the rest free it, or map whole arenas)."""


def unavailable() -> str:
    """Why allocations were not counted, as the result and the table say it."""
    from .env import gil_enabled

    if not gil_enabled():
        return "not counted: memray has no free-threaded build"
    return "not counted: memray is not installed in the worker's Python (pip install memray)"


def memray_available() -> bool:
    try:
        import memray  # noqa: F401
    except ImportError:
        return False
    return True


def count_allocations(team: Members, work: Callable[[], object]) -> dict[str, int] | None:
    """Allocator calls and bytes requested while ``work()`` runs on every thread of ``team``,
    or ``None`` without memray."""
    try:
        import memray
    except ImportError:
        return None
    allocating = {getattr(memray.AllocatorType, name) for name in ALLOCATING}
    from .spawn import folder_prefix

    with tempfile.TemporaryDirectory(prefix=folder_prefix("count")) as tmp:
        path = Path(tmp) / "allocations.bin"
        tracker = memray.Tracker(path, native_traces=False, trace_python_allocators=True, follow_fork=False)

        def stop() -> None:
            tracker.__exit__(None, None, None)

        team.run_between(work, tracker.__enter__, stop)
        summed = _summed(memray, path)
        if summed is not None:
            return summed
        reader = memray.FileReader(path)
        count = size = 0
        for record in reader.get_allocation_records():
            if record.allocator in allocating:
                count += 1
                size += record.size
        return {"allocations": count, "bytes": size, "peak_bytes": reader.metadata.peak_memory}


def _summed(memray: Any, path: Path) -> dict[str, int] | None:
    """The capture's totals from memray's own statistics (what ``memray stats`` prints, summed in
    C++), or ``None`` where they could differ from the record-by-record count: a capture holding
    an allocator kind not in :data:`ALLOCATING` (``MMAP``), or a memray without the function.

    Reading the records one by one in Python took 2.6 s of a 4.6 s counting pass (json-struct, 4
    threads: 3 million records); these totals take milliseconds and agree with it exactly
    (``tests/test_measure.py``)."""
    try:
        stats = memray._memray.compute_statistics(str(path))
        kinds = dict(stats.allocation_count_by_allocator)
        total, size, peak = (
            stats.total_num_allocations,
            stats.total_memory_allocated,
            stats.peak_memory_allocated,
        )
    except (AttributeError, TypeError, ValueError):
        return None
    if not set(kinds) <= ALLOCATING or sum(kinds.values()) != total:
        return None
    return {"allocations": int(total), "bytes": int(size), "peak_bytes": int(peak)}


_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


class FrameCounter:
    """Counts the frame objects memray's tracker makes CPython create, to subtract them.

    Measured here: ``def f(n): return n`` called 1,000 times showed 1,006 allocations under the
    tracker, 5 after subtracting the frames counted by this class; a list made per call showed
    1,004. A generator's frame is made once, however often it resumes. Calls made by threads the
    scenario starts itself (not poolbench's threads) are not seen and stay in the count.
    """

    def __init__(self, threads: int) -> None:
        self.frames = [0] * threads
        self.bytes = [0] * threads

    def run(self, index: int, work: Callable[[], object]) -> None:
        self.start(index)
        try:
            work()
        finally:
            sys.setprofile(None)  # not self.stop(): a Python call here would count as a frame

    def start(self, index: int = 0) -> None:
        """Count the calling thread's calls, as thread ``index``, until :meth:`stop`."""
        frames, sizes, generators = self.frames, self.bytes, set()
        getsizeof = sys.getsizeof

        def profile(frame: FrameType, event: str, arg: object) -> None:
            if event != "call":
                return
            if frame.f_code.co_flags & _GENERATOR_FLAGS:
                if frame in generators:
                    return
                generators.add(frame)
            frames[index] += 1
            sizes[index] += getsizeof(frame)

        sys.setprofile(profile)

    def stop(self) -> None:
        sys.setprofile(None)


def count_calls(team: Members, work: Callable[[], object]) -> tuple[int, int]:
    """(frame objects, their bytes) that ``work`` run on every member of ``team`` creates when
    profiled: on threads, each thread's own; on the loop's tasks, over the same region as the
    allocations were counted (:meth:`~poolbench.timing.Tasks.run_between`)."""
    if team.concurrent:
        counter = FrameCounter(1)
        team.run_between(work, counter.start, counter.stop)
    else:
        counter = FrameCounter(team.size)
        team.run(functools.partial(counter.run, work=work))
    return sum(counter.frames), sum(counter.bytes)


@contextmanager
def collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Null(Scenario):
    """The harness alone: same loops, an object that costs nothing, work that does nothing."""

    name = "null"

    def new(self) -> Any:
        return self

    def use(self, obj: Any) -> None:
        pass


class _AsyncNull(_Null):
    """The harness of an async scenario: the same, with a ``use`` awaited (a coroutine per op)."""

    async def use(self, obj: Any) -> None:  # type: ignore[override]
        pass


def _coroutine_size(scenario: Scenario) -> int:
    """The bytes of the coroutine object one ``await use(obj)`` makes (its frame is inside it, so
    its size follows the function's locals and stack): an async scenario's operation makes one,
    as the null one's does, but of its own size, and the difference is the harness's too. A
    synchronous ``use`` makes none (its frame lives on the interpreter's stack); with this taken
    off, ``bytearray(100)`` per op counts the same either way."""
    coroutine: Any = scenario.use(None)  # type: ignore[func-returns-value]
    try:
        return sys.getsizeof(coroutine)
    finally:
        coroutine.close()


def _discard(obj: Any) -> None:
    pass


def counted(
    team: Members,
    run: Callable[[int], object],
    n: int,
    batch: int,
    prefill: Callable[[], None] | None = None,
) -> dict[str, int] | None:
    """``run(n)`` on every thread, with the collector paused: ``prefill`` (a pool gets as many
    objects as the threads can hold out at once), one untracked run, one tracked ``run(batch)``
    whose count is discarded (one-time costs), then the counted runs, less the frames tracing made.

    The pause starts with a collection, which empties a ``sync`` pool into its victim cache: the
    prefill and the untracked run come after it. With threads, a tracked run now and then misses
    a few allocations (threads joining the tracker's stack bookkeeping at different points:
    ``bytearray(100)`` per op read 788 instead of 800 over 400 ops at 4 threads in one run of
    three): two counted runs, and a third, the median of three, when they disagree. One thread
    needs one.
    """
    repeats = 1 if team.size == 1 and not team.concurrent else 2
    work = functools.partial(run, n)

    def warm(_index: int) -> Any:
        return work()

    with collector_paused():
        if prefill is not None:
            prefill()
        team.run(warm)
        if count_allocations(team, functools.partial(run, batch)) is None:
            return None
        found: list[dict[str, int]] = []
        while len(found) < repeats or (
            len(found) == 2 and found[0]["allocations"] != found[1]["allocations"]
        ):
            one = count_allocations(team, work)
            if one is None:
                return None
            found.append(one)
        frames, frame_bytes = count_calls(team, work)
    found.sort(key=lambda f: f["allocations"])
    median = found[len(found) // 2]
    median["allocations"] -= frames
    median["bytes"] -= frame_bytes
    return median


def _ops(run: Callable[[int, Any, Put], Any], get: Callable[[], Any], put: Put) -> Callable[[int], Any]:
    def ops(n: int) -> Any:
        return run(n, get, put)  # a coroutine in an async scenario, which the team awaits

    return ops


def count_strategies(
    scenario: Scenario, strategies: list[Strategy], team: Members, count_ops: int
) -> dict[str, Counted | None]:
    """Allocations per op of each strategy: memray's counts, less tracing's frames, less the
    harness (the null scenario through the same loops). ``None`` where memray is missing."""
    batch: int = scenario.params["batch"]
    # count_ops on every thread, not shared: with threads, which object a thread gets depends on
    # scheduling, and a one-off (a sqlite connection compiling its statement on first use, ~100
    # allocations) landed in some runs; over 50 ops a thread it read +0.5 allocations per op.
    # Tasks on one loop are scheduled the same way every time, so they share the ops: at 128
    # tasks, count_ops each would be 128 times the work (a 1 MiB buffer per op: minutes).
    n = round_up(count_ops // team.size if team.concurrent else count_ops, batch)
    ops = n * team.size
    harness: dict[bool, dict[str, int] | None] = {}
    coroutine_bytes = 0
    if not scenario.overrides("run"):
        null = (_AsyncNull if scenario.is_async() else _Null)({"batch": batch})
        if scenario.is_async():
            coroutine_bytes = _coroutine_size(scenario) - _coroutine_size(null)
        for pooled in (False, True):
            put: Put = _discard if pooled else None
            harness[pooled] = counted(team, _ops(null.timed(), null.new, put), n, batch)
    out: dict[str, Counted | None] = {}
    for s in strategies:
        prefill = (
            functools.partial(fill, s, team.size * batch, on_loop=scenario.is_async())
            if s.pool is not None
            else None
        )
        found = counted(team, _ops(scenario.timed(), s.get, s.put), n, batch, prefill)
        if found is None:
            out[s.name] = None
            continue
        base = harness.get(s.pool is not None)
        if base is not None:
            found["allocations"] -= base["allocations"]
            found["bytes"] -= base["bytes"] + coroutine_bytes * ops
        warnings = []
        for key in ("allocations", "bytes"):
            if found[key] < 0:
                warnings.append(
                    f"the harness subtraction left {found[key]} {key} over {ops} ops (counted as 0)"
                )
                found[key] = 0
        out[s.name] = Counted(
            AllocStats(ops, found["allocations"], found["bytes"], found["peak_bytes"]), warnings
        )
    return out


@dataclass
class Counted:
    """One strategy's counts in one counting process, and what a reader of them must know."""

    allocs: AllocStats
    warnings: list[str] = field(default_factory=list)


def count_group(
    scenario: Scenario, strategies: list[Strategy], threads: int, count_ops: int
) -> dict[str, Counted]:
    """A counting process's figures of each strategy (``poolbench.protocol.CountJob``), by name;
    empty without memray."""
    team = team_for(scenario.is_async(), threads, time.perf_counter_ns)
    try:
        found = count_strategies(scenario, strategies, team, count_ops)
    finally:
        team.close()
    return {name: figures for name, figures in found.items() if figures is not None}
