"""Measuring one (none, pool) pair of one group inside a worker: timing, latency, GC, counting.

The strategies of a process are measured interleaved, round after round, so that the speedup of
a pool over ``none`` is a ratio of two values taken moments apart under the same conditions.
Identical runs differ 1.3-1.8x in absolute time between processes on a shared 2-core machine,
while same-process ratios stay within a few percent. A process holds ``none`` and at most one
pool: no pool's retained objects can move another pool's cells (see :mod:`poolbench.layout`).

Passes, in this order:

1. calibration: operations per value doubled until one value lasts ``min_time``, unless the
   parent pins the loops found by the pair's first process (every process then times the same
   amount of work);
2. warmups, then timed values, round-robin over the strategies (no tracing of any kind), each
   round also timing a fixed reference workload on the same threads
   (:func:`~poolbench.timing.reference_work`), so ``compare`` can divide out how fast the
   machine was during this process;
3. latency: single steps timed one by one (a separate pass: timing each step adds a clock call),
   in the processes the parent asks for details;
4. garbage collection and memory (:mod:`poolbench.gcpass`), in the same processes.

Allocations are counted in processes of their own (:func:`poolbench.counting.count_group`).
"""

from __future__ import annotations

import functools
import threading
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .gcpass import gc_pass
from .protocol import REFERENCE, StrategyFigures
from .result import WAIT_SAMPLE, Acquire, GcStats, MemoryStats, Run
from .scenario import Scenario, awaits
from .settings import Settings
from .strategies import Strategy
from .timing import MIN_TASK_LOOPS, Clock, Members, calibrate, reference_work, team_for


def measure_group(
    scenario: Scenario,
    strategies: list[Strategy],
    threads: int,
    settings: Settings,
    *,
    clock: Clock = time.perf_counter_ns,
    detail: bool = True,
    loops: Mapping[str, int] | None = None,
    reference: Callable[[int], None] = reference_work,
) -> dict[str, StrategyFigures]:
    """Measure every strategy of one process: the figures of each, by strategy name.

    ``detail`` runs the latency and GC/memory passes (the parent asks for them in the first
    processes of a pair only: their figures pool over processes and settle in a few, while every
    process adds to the timed values). ``loops`` pins operations per value (by strategy name, and
    :data:`REFERENCE`). ``clock`` and ``reference`` are parameters so that tests can drive them
    with a fake clock.
    """
    team = team_for(scenario.is_async(), threads, clock)
    try:
        return _measure(scenario, strategies, team, settings, clock, detail, dict(loops or {}), reference)
    finally:
        team.close()


def _measure(
    scenario: Scenario,
    strategies: list[Strategy],
    team: Members,
    settings: Settings,
    clock: Clock,
    detail: bool,
    loops: dict[str, int],
    reference_work: Callable[[int], None],
) -> dict[str, StrategyFigures]:
    run = scenario.timed()
    batch: int = scenario.params["batch"]
    threads = team.size

    # Each thread's get/put, read by that thread once, before anything is timed: a sharded pool
    # gives every thread its own (Strategy.here), and reading them inside a value would time it.
    bound: dict[str, list[tuple[Any, Any]]] = {}
    for s in strategies:
        bound[s.name] = [(s.get, s.put)] * threads
        team.run(functools.partial(_bind, s, bound[s.name]))

    # Tasks sharing a loop start each value from objects in circulation (Tasks.run says why).
    steady = team.concurrent and threads > 1

    def timed(s: Strategy, n: int, *, warm: bool = steady) -> int:
        """Wall time of ``n`` operations on every member; with a warm step, the time of as many
        operations as ended in the span: the other tasks' warm steps end in it too (one batch
        each), and a pool that makes callers wait serves them in it (Little's law reads 17-19%
        slow at 16 and 64 tasks if they are not counted, 8-9% before warm steps)."""
        pairs = bound[s.name]
        if not warm:
            return team.run(lambda index: run(n, *pairs[index]))
        elapsed = team.run(lambda index: run(n, *pairs[index]), lambda index: run(batch, *pairs[index]))
        return elapsed * n * threads // (n * threads + batch * (threads - 1))

    def timed_reference(n: int) -> int:
        return team.run(lambda _index: reference_work(n))

    min_ns = int(settings.min_time * 1e9)
    calibrated = []
    for s in strategies:
        if not loops.get(s.name):
            least = MIN_TASK_LOOPS * batch if steady else 0
            loops[s.name] = calibrate(functools.partial(timed, s), batch, min_ns, least=least)
            calibrated.append(s.name)
        else:
            timed(s, batch)  # one batch first, as calibration would have: fills a pool, warms caches
    loops.update(same_loops({name: loops[name] for name in calibrated}))
    if not loops.get(REFERENCE):
        loops[REFERENCE] = calibrate(timed_reference, 1, min_ns)
    ref_loops = loops[REFERENCE]
    tally = (
        _Tally(scenario.counters, threads, batch if steady else 0) if scenario.overrides("counters") else None
    )
    taken, reference = _interleaved(strategies, tally.wrap(timed) if tally else timed,
                                    functools.partial(timed_reference, ref_loops), loops, threads, settings,
                                    clock)  # fmt: skip

    seen = {
        s.name: observe(s, bound[s.name], run, team, loops[s.name] * settings.values, clock)
        for s in strategies
        if settings.observe and s.pool is not None
    }

    latency: dict[str, list[float]] = {s.name: [] for s in strategies}
    passes: dict[str, _GcPass] = {s.name: _GcPass() for s in strategies}
    if detail:
        for s in strategies:
            steps = min(settings.latency_steps, max(5, settings.values * loops[s.name] // batch))
            latency[s.name] = _latency(run, bound[s.name], team, batch, steps, clock)
        for s in strategies:
            for other in strategies:
                if other is not s and other.pool is not None:
                    other.pool.clear()
            n = loops[s.name] * settings.gc_values
            passes[s.name] = _gc(s, functools.partial(timed, s, warm=False), n, loops[s.name], threads, clock)

    return {
        s.name: StrategyFigures(
            run=Run(
                loops=loops[s.name],
                values=taken[s.name]["values"],
                warmups=taken[s.name]["warmups"],
                reference=list(reference),
                reference_loops=ref_loops,
                hit_rate=passes[s.name].hit_rate,
                peak_rss_bytes=passes[s.name].peak_bytes,
                rss_added_bytes=passes[s.name].added_bytes,
                per_1000_ops=tally.per_1000_ops(s.name) if tally else {},
                acquire=seen.get(s.name),
            ),
            latency=latency[s.name],
            gc=passes[s.name].gc,
            memory=passes[s.name].memory,
            pool_stats=s.pool.stats().__dict__ if s.pool is not None else None,
        )
        for s in strategies
    }


def _interleaved(
    strategies: list[Strategy],
    timed: Callable[[Strategy, int], int],
    timed_reference: Callable[[], int],
    loops: dict[str, int],
    threads: int,
    settings: Settings,
    clock: Clock,
) -> tuple[dict[str, dict[str, list[float]]], list[float]]:
    """The warmups and values of every strategy, in rounds of one value each (the one that goes
    first rotates from round to round, across both phases), and the reference loop's value after
    each round of values; all in ns per op per thread."""
    taken: dict[str, dict[str, list[float]]] = {s.name: {"warmups": [], "values": []} for s in strategies}
    reference: list[float] = []
    ref_loops = loops[REFERENCE]
    rounds = 0
    round_ns = 0
    for phase in ("warmups", "values"):
        count = settings.warmups if phase == "warmups" else value_count(settings, round_ns)
        for _ in range(count):
            first = rounds % len(strategies)
            rounds += 1
            order = strategies[first:] + strategies[:first]
            started = clock()
            for s in order:
                elapsed = timed(s, loops[s.name])
                taken[s.name][phase].append(elapsed / (loops[s.name] * threads))
            if phase == "values":
                reference.append(timed_reference() / (ref_loops * threads))
            round_ns = max(round_ns, clock() - started)
    return taken, reference


def observe(
    s: Strategy, pairs: list[tuple[Any, Any]], run: Any, team: Members, n: int, clock: Clock
) -> Acquire:
    """A size sweep's observed pass: ``n`` operations a member with every get and put timed.

    Each member's get is wrapped (the call to its return is the acquire wait; its return starts
    the hold) and its put (the call ends the hold); objects out are counted under a lock, for
    the peak. The wrappers cost three clock reads and a lock an operation, which is why this is a
    pass of its own: the timed values, and so the throughput, never pay for them.
    """
    assert s.pool is not None
    members = team.size
    waits = [array("q") for _ in range(members)]
    held = [0] * members
    out = [0, 0]  # in use now, the peak
    lock = threading.Lock()

    def wrapped(index: int) -> tuple[Any, Any]:
        get, put = pairs[index]
        record = waits[index].append

        def took(started: int) -> None:
            now = clock()
            record(now - started)
            held[index] -= now
            with lock:
                out[0] += 1
                if out[0] > out[1]:
                    out[1] = out[0]

        def giving() -> None:
            held[index] += clock()
            with lock:
                out[0] -= 1

        if awaits(get):

            async def aget() -> Any:
                started = clock()
                obj = await get()
                took(started)
                return obj

            observed_get: Any = aget
        else:

            def sget() -> Any:
                started = clock()
                obj = get()
                took(started)
                return obj

            observed_get = sget
        if put is not None and awaits(put):

            async def aput(obj: Any) -> None:
                giving()
                await put(obj)

            return observed_get, aput

        def sput(obj: Any) -> None:
            giving()
            put(obj)

        return observed_get, sput

    observed = [wrapped(index) for index in range(members)]
    elapsed = team.run(lambda index: run(n, *observed[index]))
    found = sorted(w for member in waits for w in member)
    ops = len(found)
    if len(found) > WAIT_SAMPLE:
        last = len(found) - 1
        found = [found[round(i * last / (WAIT_SAMPLE - 1))] for i in range(WAIT_SAMPLE)]
    stats = s.pool.stats()
    return Acquire(
        ops=ops,
        seconds=elapsed / 1e9,
        waits_ns=[float(w) for w in found],
        wait_max_ns=float(found[-1]) if found else 0.0,
        held_ns=sum(held) / ops if ops else 0.0,
        peak_in_use=out[1],
        created=stats.misses,
        timeouts=stats.timeouts,
    )


class _Tally:
    """A scenario's :meth:`~poolbench.Scenario.counters`, read around each timed value and added
    up by strategy, with the operations those values ran (a warm step's batch on every member
    included: its operations open connections too)."""

    def __init__(self, read: Callable[[], dict[str, int]], members: int, warm: int) -> None:
        self.read, self.members, self.warm = read, members, warm
        self.events: dict[str, dict[str, int]] = {}
        self.ops: dict[str, int] = {}

    def wrap(self, timed: Callable[[Strategy, int], int]) -> Callable[[Strategy, int], int]:
        def counted(s: Strategy, n: int) -> int:
            before = self.read()
            elapsed = timed(s, n)
            after = self.read()
            events = self.events.setdefault(s.name, {})
            for name, total in after.items():
                if not isinstance(name, str) or isinstance(total, bool) or not isinstance(total, int):
                    raise TypeError(f"counters() must give whole numbers by name, not {name!r}: {total!r}")
                events[name] = events.get(name, 0) + total - before.get(name, 0)
            self.ops[s.name] = self.ops.get(s.name, 0) + (n + self.warm) * self.members
            return elapsed

        return counted

    def per_1000_ops(self, name: str) -> dict[str, float]:
        ops = self.ops.get(name, 0)
        if not ops:
            return {}
        return {event: 1000 * max(0, count) / ops for event, count in self.events.get(name, {}).items()}


@dataclass
class _GcPass:
    """The GC and memory pass of one strategy (none in a process that ran no details)."""

    gc: GcStats | None = None
    memory: MemoryStats | None = None
    hit_rate: float | None = None

    @property
    def peak_bytes(self) -> int | None:
        return self.memory.peak_bytes if self.memory else None

    @property
    def added_bytes(self) -> int | None:
        return self.memory.added_bytes if self.memory else None


SAME_LOOPS_WITHIN = 8
"""Strategies whose calibrated loops lie within this factor time the same number of operations."""


def same_loops(loops: Mapping[str, int]) -> dict[str, int]:
    """The loops of strategies timed side by side: the largest of them for all, unless they lie
    more than :data:`SAME_LOOPS_WITHIN` apart (then each keeps its own).

    A value's fixed cost (waking the threads, reading the clocks) spreads over its operations, so
    a strategy timed over more operations a value reads faster per operation. Calibration doubles,
    so two strategies of the same speed got 1x, 2x or 4x each other's loops by chance: `gate-same`
    (identical code pooled or not) read 0.936x with ``none`` at 4x ``sync``'s loops, 1.05x at
    0.5x, 1.00x when equal (4 threads, 2 CPUs; 10 runs), and worker-tasks at 2 threads 1.10-1.12x
    against 1.14-1.16x, "inconclusive" against "pooling wins". With the same loops both carry
    the same fixed cost per operation. Loops 8x apart mean a speedup of 4x or more, which such a
    cost cannot move across a verdict, and the slower strategy's values would last 8x as long."""
    if len(loops) < 2 or max(loops.values()) > SAME_LOOPS_WITHIN * min(loops.values()):
        return dict(loops)
    most = max(loops.values())
    return dict.fromkeys(loops, most)


MIN_VALUES = 8


def value_count(settings: Settings, round_ns: int) -> int:
    """Timed values per strategy: ``settings.values``, fewer where one round (a value of each
    strategy) took so long that they would outlast ``settings.value_seconds`` (the warmup
    round's time, the longest if several), never fewer than :data:`MIN_VALUES`. json-struct at 4
    threads times 1,000 records per thread a value (32 ms): 20 values made a process 1.6 s of a
    quick run's 45, while its verdict stayed open at any affordable count."""
    if not settings.value_seconds or round_ns <= 0:
        return settings.values
    fits = int(settings.value_seconds * 1e9 // round_ns)
    return max(min(settings.values, MIN_VALUES), min(settings.values, fits))


def _bind(s: Strategy, pairs: list[tuple[Any, Any]], index: int) -> None:
    pairs[index] = s.here()


def _gc(
    s: Strategy, timed: Callable[[int], int], n: int, warm_ops: int, threads: int, clock: Clock
) -> _GcPass:
    """The GC pass of one strategy: ``n`` operations per thread, after ``warm_ops`` (one value's
    worth) that refill its pool: the other strategy's pass emptied it. Its figures, and the pool's
    hit rate over the pass."""
    pool = s.pool
    misses = [0]

    def run() -> None:
        before = pool.stats().misses if pool is not None else 0
        timed(n)
        misses[0] = (pool.stats().misses if pool is not None else 0) - before

    warm = functools.partial(timed, warm_ops) if pool is not None else None
    gc, memory = gc_pass(run, warm=warm, clock=clock)
    gc.ops = n * threads
    return _GcPass(gc, memory, 1 - misses[0] / (n * threads) if pool is not None else None)


def _latency(
    run: Callable[[int, Any, Any], Any],
    pairs: list[tuple[Any, Any]],
    team: Members,
    batch: int,
    steps: int,
    clock: Clock,
) -> list[float]:
    """Per-operation latency of single steps (one batch each), from every thread or task.

    At most ``steps`` per member, and no more than the timed values covered: a batch of 1,000
    records is one step, and 100 of them would cost more than every value of the cell. Under
    concurrency a task's step includes its waits for the others (what a caller sees).
    """
    samples: list[list[float]] = [[] for _ in range(team.size)]

    def task(index: int) -> None:
        out = samples[index].append
        get, put = pairs[index]
        for _ in range(steps):
            start = clock()
            run(batch, get, put)
            out((clock() - start) / batch)

    async def tasks(index: int) -> None:
        out = samples[index].append
        get, put = pairs[index]
        for _ in range(steps):
            start = clock()
            await run(batch, get, put)
            out((clock() - start) / batch)

    team.run(tasks if team.concurrent else task)
    return [x for per_member in samples for x in per_member]
