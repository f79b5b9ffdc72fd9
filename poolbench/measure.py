"""Measuring one group of cells inside a worker: (scenario, params, threads) × pool strategies.

The strategies of a group are measured interleaved in one process, round after round, so that the
speedup of a pool over ``none`` is a ratio of two values taken moments apart under the same
conditions. Identical runs differ 1.3-1.8x in absolute time between processes on a shared 2-core
machine, while same-process ratios stay within a few percent.

Passes, in this order:

1. calibration: operations per value doubled until one value lasts ``min_time``;
2. warmups, then timed values, round-robin over the strategies (no tracing of any kind), each
   round also timing a fixed reference workload (:func:`reference_work`), so ``compare`` can
   divide out how fast the machine was during this process;
3. latency: single steps timed one by one (a separate pass: timing each step adds a clock call);
4. garbage collection: ``gc.get_stats()`` deltas and pause times (``gc.callbacks``), the pool's
   miss counter (hit rate) and the peak RSS of the pass;
5. allocations: memray's tracker (see :func:`count_allocations` for why memray).
"""

from __future__ import annotations

import functools
import gc
import inspect
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from types import FrameType
from typing import Any

from .pools import Pool, create_pool
from .scenario import Scenario

Clock = Callable[[], int]
Get = Callable[[], Any]
Put = Callable[[Any], None] | None


@dataclass(frozen=True)
class Settings:
    """How hard to measure; ``poolbench run --quick/--rigorous`` pick one of :data:`MODES`."""

    processes: int
    values: int
    warmups: int
    min_time: float  # seconds per value
    latency_steps: int  # timed steps per thread
    gc_values: int  # values' worth of operations in the GC pass
    count_ops: int  # operations per thread counted by memray (rounded up to whole batches)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


MODES = {
    "quick": Settings(processes=2, values=5, warmups=1, min_time=0.01, latency_steps=100,
                      gc_values=2, count_ops=200),
    "default": Settings(processes=4, values=8, warmups=1, min_time=0.05, latency_steps=300,
                        gc_values=3, count_ops=500),
    "rigorous": Settings(processes=8, values=12, warmups=2, min_time=0.1, latency_steps=1000,
                         gc_values=5, count_ops=1000),
}  # fmt: skip
SMOKE = Settings(processes=1, values=3, warmups=0, min_time=0.001, latency_steps=5, gc_values=1,
                 count_ops=10)  # fmt: skip
"""Not a mode for measuring: the fastest settings that still run every pass (tests use it)."""


class Team:
    """``threads`` threads that run one task together, started on a barrier, timed as a whole.

    Created once per worker, so thread start-up is never inside a value.
    """

    def __init__(self, threads: int, clock: Clock) -> None:
        self.size = threads
        self._clock = clock
        self._task: Callable[[int], None] | None = None
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        if threads > 1:
            self._start = threading.Barrier(threads + 1)
            self._end = threading.Barrier(threads + 1)
            for i in range(threads):
                t = threading.Thread(target=self._loop, args=(i,), daemon=True,
                                     name=f"poolbench-{i}")  # fmt: skip
                t.start()
                self._threads.append(t)

    def _loop(self, index: int) -> None:
        while True:
            self._start.wait()
            task = self._task
            if task is None:
                return
            try:
                task(index)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                self._errors.append(exc)
            self._end.wait()

    def run(self, task: Callable[[int], None]) -> int:
        """Run ``task(thread_index)`` on every thread at once; the wall time in clock units."""
        clock = self._clock
        if self.size == 1:
            start = clock()
            task(0)
            return clock() - start
        self._task = task
        start = clock()
        self._start.wait()
        self._end.wait()
        elapsed = clock() - start
        if self._errors:
            raise self._errors[0]
        return elapsed

    def close(self) -> None:
        if self._threads:
            self._task = None
            self._start.wait()
            for t in self._threads:
                t.join()


def reference_work(n: int) -> None:
    """A fixed mix of interpreter work: the yardstick ``compare`` normalizes times by.

    Small dicts, lists, strings and tuples made and dropped, attribute-free arithmetic: what the
    scenarios spend their time on, with no pool and nothing a scenario or poolbench version can
    change. Timed in every round of every worker, next to the cells' values.
    """
    for _ in repeat(None, n):
        tags = [1, 2, 3]
        record = {"id": 1, "tags": tags}
        record["id"] = len(tags) + 1
        key = "k" * 4
        pair = (key, record)
        if pair[1]["id"] != 4:
            raise AssertionError("reference workload broke")


def round_up(n: int, multiple: int) -> int:
    return max(multiple, -(-n // multiple) * multiple)


def calibrate(time_ops: Callable[[int], int], batch: int, min_time_ns: int) -> int:
    """Operations per thread (a multiple of ``batch``) for one value to last ``min_time_ns``.

    Doubles from one batch until a run lasts long enough (pyperf calibrates the same way).
    """
    n = batch
    while True:
        elapsed = time_ops(n)
        if elapsed >= min_time_ns or n >= 1 << 32:
            return n
        n *= 2


@dataclass
class Strategy:
    """One strategy inside a worker: its pool (none for ``none``) and the callables it runs."""

    name: str
    get: Get
    put: Put
    pool: Pool[Any] | None


def build_strategies(scenario: Scenario, names: list[str], threads: int) -> list[Strategy]:
    """``none`` uses ``scenario.new`` directly (what a user writes without a pool)."""
    reset = scenario.reset if scenario.overrides("reset") else None
    accept = scenario.accept if scenario.overrides("accept") else None
    built = []
    for name in names:
        if name == "none":
            built.append(Strategy(name, scenario.new, None, None))
            continue
        options = {"reset": reset, "accept": accept, **scenario.pool_options(name, threads)}
        pool = create_pool(name, scenario.new, **options)
        built.append(Strategy(name, pool.get, pool.put, pool))
    return built


def _peak_rss_reset() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux: ``clear_refs`` 5).

    psutil reports the current RSS but not a resettable peak, and ``ru_maxrss`` is a lifetime peak
    that would give every strategy after the first the same figure.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def gc_pass(run: Callable[[], object], clock: Clock = time.perf_counter_ns) -> dict[str, Any]:
    """Collections per generation and pause times while ``run()`` runs; GC stays as it is."""
    pauses: list[int] = []
    started = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = clock()
        else:
            pauses.append(clock() - started[0])

    before = gc.get_stats()
    resettable = _peak_rss_reset()
    gc.callbacks.append(on_gc)
    try:
        run()
    finally:
        gc.callbacks.remove(on_gc)
    after = gc.get_stats()
    return {
        "collections": [a["collections"] - b["collections"] for a, b in zip(after, before, strict=False)],
        "pause_total_ns": sum(pauses),
        "pause_max_ns": max(pauses, default=0),
        "peak_rss_bytes": _peak_rss(),
        "peak_rss_of_pass": resettable,
    }


_ALLOCATING = frozenset(
    {"MALLOC", "CALLOC", "REALLOC", "ALIGNED_ALLOC", "MEMALIGN", "POSIX_MEMALIGN", "VALLOC",
     "PVALLOC", "PYMALLOC_MALLOC", "PYMALLOC_CALLOC", "PYMALLOC_REALLOC"}
)  # fmt: skip


def count_allocations(run: Callable[[], object]) -> dict[str, int] | None:
    """Allocator calls and bytes requested while ``run()`` runs, or ``None`` without memray.

    memray with ``trace_python_allocators=True`` records every call to Python's object allocator
    as well as malloc: it gave 72.0 allocations per JSON record, identical in two processes.
    tracemalloc only sees blocks still alive at a snapshot, so it cannot count allocations per
    operation; ``sys.getallocatedblocks()`` deltas count net retained blocks (~0 per op even at 58
    allocations per op). Both count things the GIL-free timing pass never pays for, so this pass
    runs after timing.
    """
    try:
        import memray
    except ImportError:
        return None
    allocating = {getattr(memray.AllocatorType, name) for name in _ALLOCATING}
    with tempfile.TemporaryDirectory(prefix="poolbench-") as tmp:
        path = Path(tmp) / "allocations.bin"
        with memray.Tracker(path, native_traces=False, trace_python_allocators=True,
                            follow_fork=False):  # fmt: skip
            run()
        reader = memray.FileReader(path)
        count = size = 0
        for record in reader.get_allocation_records():
            if record.allocator in allocating:
                count += 1
                size += record.size
        return {"allocations": count, "bytes": size, "peak_bytes": reader.metadata.peak_memory}


_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


class FrameCounter:
    """Counts the frame objects memray's tracker makes CPython create, to subtract them.

    memray follows the Python stack with a profile hook, and under a profile hook CPython 3.11
    materializes a frame object for every Python-level call: one allocation of ~150 bytes per
    call that does not exist when nothing traces. Measured here: ``def f(n): return n`` called
    1,000 times showed 1,006 allocations under the tracker, 5 after subtracting the frames
    counted by this class; a list made per call showed 1,004. A generator's frame is made once,
    however often it resumes. Calls made by threads the scenario starts itself (not poolbench's
    threads) are not seen and stay in the count.
    """

    def __init__(self, threads: int) -> None:
        self.frames = [0] * threads
        self.bytes = [0] * threads

    def run(self, index: int, work: Callable[[], object]) -> None:
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
        try:
            work()
        finally:
            sys.setprofile(None)


def count_calls(team: Team, work: Callable[[], object]) -> tuple[int, int]:
    """(frame objects, their bytes) that ``work`` run on every thread of ``team`` creates when profiled."""
    counter = FrameCounter(team.size)
    team.run(functools.partial(counter.run, work=work))
    return sum(counter.frames), sum(counter.bytes)


class _Null(Scenario):
    """The harness alone: same loops, an object that costs nothing, work that does nothing."""

    name = "null"

    def new(self) -> Any:
        return self

    def use(self, obj: Any) -> None:
        pass


def _discard(obj: Any) -> None:
    pass


def measure_group(
    scenario: Scenario,
    strategies: list[Strategy],
    threads: int,
    settings: Settings,
    *,
    clock: Clock = time.perf_counter_ns,
    count_allocs: bool = True,
    reference: Callable[[int], None] = reference_work,
) -> dict[str, Any]:
    """Measure every strategy of one group; returns the worker's JSON-ready results.

    ``clock`` and ``reference`` are parameters so that tests can drive them with a fake clock.
    """
    batch: int = scenario.params["batch"]
    team = Team(threads, clock)
    try:
        return _measure(scenario, strategies, team, batch, settings, clock, count_allocs, reference)
    finally:
        team.close()


def _measure(
    scenario: Scenario,
    strategies: list[Strategy],
    team: Team,
    batch: int,
    settings: Settings,
    clock: Clock,
    count_allocs: bool,
    reference_work: Callable[[int], None],
) -> dict[str, Any]:
    run = scenario.run
    threads = team.size

    def timed(s: Strategy, n: int) -> int:
        get, put = s.get, s.put
        return team.run(lambda _index: run(n, get, put))

    def timed_reference(n: int) -> int:
        start = clock()
        reference_work(n)
        return clock() - start

    min_ns = int(settings.min_time * 1e9)
    loops = {s.name: calibrate(functools.partial(timed, s), batch, min_ns) for s in strategies}
    ref_loops = calibrate(timed_reference, 1, min_ns)
    per_value = {name: n * threads for name, n in loops.items()}
    results: dict[str, dict[str, Any]] = {
        s.name: {"loops": loops[s.name], "warmups": [], "values": []} for s in strategies
    }
    reference: list[float] = []
    for phase, count in (("warmups", settings.warmups), ("values", settings.values)):
        for r in range(count):
            order = strategies[r % len(strategies) :] + strategies[: r % len(strategies)]
            for s in order:
                elapsed = timed(s, loops[s.name])
                results[s.name][phase].append(elapsed / per_value[s.name])
            if phase == "values":
                reference.append(timed_reference(ref_loops) / ref_loops)
    for s in strategies:
        results[s.name]["reference"] = reference

    for s in strategies:
        results[s.name]["latency"] = _latency(run, s, team, batch, settings.latency_steps, clock)

    for s in strategies:
        n = loops[s.name] * settings.gc_values
        before = s.pool.stats().misses if s.pool is not None else 0
        stats = gc_pass(functools.partial(timed, s, n), clock)
        stats["ops"] = n * threads
        results[s.name]["gc"] = stats
        if s.pool is not None:
            results[s.name]["hit_rate"] = 1 - (s.pool.stats().misses - before) / (n * threads)

    if count_allocs:
        _count(scenario, strategies, team, batch, settings, results)
    for s in strategies:
        if s.pool is not None:
            results[s.name]["pool_stats"] = s.pool.stats().__dict__
    return results


def _latency(
    run: Callable[[int, Get, Put], None],
    s: Strategy,
    team: Team,
    batch: int,
    steps: int,
    clock: Clock,
) -> list[float]:
    """Per-operation latency of single steps (one batch each), from every thread."""
    samples: list[list[float]] = [[] for _ in range(team.size)]
    get, put = s.get, s.put

    def task(index: int) -> None:
        out = samples[index].append
        for _ in range(steps):
            start = clock()
            run(batch, get, put)
            out((clock() - start) / batch)

    team.run(task)
    return [x for per_thread in samples for x in per_thread]


def _count(
    scenario: Scenario,
    strategies: list[Strategy],
    team: Team,
    batch: int,
    settings: Settings,
    results: dict[str, dict[str, Any]],
) -> None:
    """Allocations per op: memray's counts, less the frame objects its tracing creates
    (:class:`FrameCounter`), less the harness (the null scenario through the same loops)."""
    n = round_up(settings.count_ops, batch)
    ops = n * team.size

    def counted(work: Callable[[], object]) -> dict[str, int] | None:
        def task(_index: int) -> None:
            work()

        found = count_allocations(functools.partial(team.run, task))
        if found is None:
            return None
        frames, frame_bytes = count_calls(team, work)
        found["allocations"] -= frames
        found["bytes"] -= frame_bytes
        return found

    harness: dict[bool, dict[str, int] | None] = {}
    if not scenario.overrides("run"):
        null = _Null({"batch": batch})
        for pooled in (False, True):
            put: Put = _discard if pooled else None
            harness[pooled] = counted(functools.partial(null.run, n, null.new, put))
    for s in strategies:
        found = counted(functools.partial(scenario.run, n, s.get, s.put))
        if found is None:
            results[s.name]["allocs"] = None
            continue
        base = harness.get(s.pool is not None)
        if base is not None:
            found["allocations"] -= base["allocations"]
            found["bytes"] -= base["bytes"]
        found["allocations"] = max(0, found["allocations"])
        found["bytes"] = max(0, found["bytes"])
        found["ops"] = ops
        results[s.name]["allocs"] = found
