"""Timing inside a worker: a team of threads started on a barrier, or of tasks on one event loop;
the clock, calibration, and the reference workload. Nothing here knows about pools, scenarios or
result files.

The two teams are the one place where threads and asyncio differ: both run ``task(index)`` for
every member at once and return the wall time, so every measurement pass (values, latency, GC,
memory, counting) is written once. A task of a :class:`Tasks` team may return an awaitable,
which the team awaits.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from itertools import repeat
from typing import Any, Protocol

Clock = Callable[[], int]


class Members(Protocol):
    """What the measurement passes need of a team: :class:`Team` (threads) or :class:`Tasks`."""

    size: int
    concurrent: bool
    """Tasks on one loop (their work interleaves at awaits), not threads."""

    def run(self, task: Callable[[int], Any], warm: Callable[[int], Any] | None = None) -> int: ...

    def run_between(
        self, work: Callable[[], Any], begin: Callable[[], None], end: Callable[[], None]
    ) -> None: ...

    def close(self) -> None: ...


class Team:
    """``threads`` threads that run one task together, started on a barrier, timed as a whole.

    Created once per worker, so thread start-up is never inside a value.
    """

    concurrent = False

    def __init__(self, threads: int, clock: Clock) -> None:
        self.size = threads
        self._clock = clock
        self._task: Callable[[int], object] | None = None
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._spans = [(0, 0)] * threads
        if threads > 1:
            self._start = threading.Barrier(threads + 1)
            self._end = threading.Barrier(threads + 1)
            for i in range(threads):
                t = threading.Thread(target=self._loop, args=(i,), daemon=True,
                                     name=f"poolbench-{i}")  # fmt: skip
                t.start()
                self._threads.append(t)

    def _loop(self, index: int) -> None:
        clock, spans = self._clock, self._spans
        while True:
            self._start.wait()
            task = self._task
            if task is None:
                return
            try:
                start = clock()
                out = task(index)
                spans[index] = (start, clock())
                if out is not None:
                    _synchronous(out)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                self._errors.append(exc)
            self._end.wait()

    def run(self, task: Callable[[int], object], warm: Callable[[int], object] | None = None) -> int:
        """Run ``task(thread_index)`` on every thread at once; the wall time in clock units.

        With threads, from the first thread's start to the last one's end, as the threads read
        the clock themselves: the barriers' own hand-offs (0.12 ms at 2 threads, 0.27 ms at 4
        under the GIL, measured here) would otherwise be timed with every value. Threads take no
        warm step (``warm``: :meth:`Tasks.run` only; the harness asks it of tasks alone)."""
        if warm is not None:
            raise ValueError("a team of threads takes no warm step")
        clock = self._clock
        if self.size == 1:
            start = clock()
            out = task(0)
            elapsed = clock() - start
            if out is not None:
                _synchronous(out)
            return elapsed
        self._task = task
        self._start.wait()
        self._end.wait()
        if self._errors:
            raise self._errors[0]
        spans = self._spans
        return max(end for _, end in spans) - min(start for start, _ in spans)

    def run_between(
        self, work: Callable[[], object], begin: Callable[[], None], end: Callable[[], None]
    ) -> None:
        """Run ``work()`` on every thread, all of it after ``begin()`` and before ``end()``.

        For the counting pass: between ``begin`` and ``end`` the threads only acquire and release
        locks made beforehand (``_thread.lock`` allocates nothing), never a ``Barrier`` or
        ``Condition``, which allocate waiter locks and lists in numbers that depend on timing.
        After their work, threads park until ``end()`` has run, so nothing they do on the way
        out (returning from frames) lands inside the counted region.
        """
        if self.size == 1:
            begin()
            try:
                work()
            finally:
                end()
            return
        go = [_held() for _ in range(self.size)]
        done = [_held() for _ in range(self.size)]
        park = [_held() for _ in range(self.size)]

        def task(index: int) -> None:
            go[index].acquire()
            try:
                work()
            finally:
                done[index].release()
                park[index].acquire()

        self._task = task
        self._start.wait()
        begin()
        try:
            for lock in go:
                lock.release()
            for lock in done:
                lock.acquire()
        finally:
            end()
            for lock in park:
                lock.release()
            self._end.wait()
        if self._errors:
            raise self._errors[0]

    def close(self) -> None:
        if self._threads:
            self._task = None
            self._start.wait()
            for t in self._threads:
                t.join()


class Tasks:
    """``size`` tasks on one event loop that run one task together, timed as a whole: the async
    counterpart of :class:`Team`. The loop is the worker's (:func:`loop`), where the scenario's
    ``setup`` ran, so what it made (a connection pool, say) belongs to it.

    The wall time runs from the first task's start to the last one's end, read by the tasks, so
    creating and gathering the tasks is not timed (as the barriers are not with threads).
    """

    concurrent = True

    def __init__(self, size: int, clock: Clock) -> None:
        self.size = size
        self._clock = clock
        self._loop = loop()

    def run(self, task: Callable[[int], Any], warm: Callable[[int], Any] | None = None) -> int:
        """Run ``task(index)`` in every task at once (awaiting what it returns); the wall time.

        ``warm(index)``, if given, runs in each task before it reads the clock, with no barrier
        after it: a value then starts from objects in circulation, as a service's steady state
        does. Without it every value began from an empty heap: the tasks of one value drop their
        objects in one trip of the loop, glibc gives the freed top of the heap back to the
        system, and the next value faults it in again (128 tasks x 64 KiB: 2,033 page faults a
        value, ~10 ms, measured here). That cost per value, spread over however many operations
        calibration chose, made an unpooled 64 KiB handler at 128 tasks read 27.9 µs at 4
        operations a task and 6.9 µs at 64, and identical runs disagree by 2x. A barrier after
        the warm step would drop every object again; without one, the span holds the warm
        steps of the tasks after the first (the caller counts them as operations done in it:
        ``measure.timed``; :data:`MIN_TASK_LOOPS` keeps them a small share of a value)."""
        clock = self._clock
        spans = [(0, 0)] * self.size

        async def one(index: int) -> None:
            if warm is not None:
                ready = warm(index)
                if inspect.isawaitable(ready):
                    await ready
            start = clock()
            done = task(index)
            if inspect.isawaitable(done):
                await done
            spans[index] = (start, clock())

        self._loop.run_until_complete(self._all(one))
        return max(end for _, end in spans) - min(start for start, _ in spans)

    async def _all(self, one: Callable[[int], Awaitable[None]]) -> None:
        if self.size == 1:
            await one(0)
            return
        tasks = [asyncio.ensure_future(one(i)) for i in range(self.size)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    def run_between(
        self, work: Callable[[], Any], begin: Callable[[], None], end: Callable[[], None]
    ) -> None:
        """Run ``work()`` in every task, all of it after ``begin()`` and before ``end()``: the
        tasks are made before ``begin`` and wait on a future made before it too; the last to
        finish calls ``end()``, and the others wait for it, so no task's end falls inside."""
        loop = self._loop
        go, park = loop.create_future(), loop.create_future()
        finished = [0]

        async def one() -> None:
            await go
            try:
                out = work()
                if inspect.isawaitable(out):
                    await out
            finally:
                finished[0] += 1
                if finished[0] == self.size:
                    end()
                    park.set_result(None)
            if not park.done():
                await park

        tasks = [loop.create_task(one()) for _ in range(self.size)]

        async def start() -> None:
            begin()
            go.set_result(None)
            await asyncio.gather(*tasks)

        loop.run_until_complete(start())

    def close(self) -> None:
        pass


_LOOP: asyncio.AbstractEventLoop | None = None
LOOPS = ("asyncio", "uvloop")
"""What ``--loop`` takes: asyncio's own event loop, or uvloop's (``pip install 'poolbench[uvloop]'``)."""
_KIND = "asyncio"


def use_loop(kind: str) -> None:
    """Make the worker's loop (when it is first needed) one of :data:`LOOPS`."""
    global _KIND
    if kind not in LOOPS:
        raise ValueError(f"unknown event loop {kind!r} (one of {', '.join(LOOPS)})")
    _KIND = kind


def loop() -> asyncio.AbstractEventLoop:
    """The worker's one event loop, made on first use (every async scenario's setup, passes and
    teardown run on it)."""
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        if _KIND == "uvloop":
            import uvloop

            _LOOP = uvloop.new_event_loop()
        else:
            _LOOP = asyncio.new_event_loop()
        asyncio.set_event_loop(_LOOP)
    return _LOOP


def resolve(value: Any) -> Any:
    """``value``, or what it resolves to on the worker's loop if it is awaitable."""
    if inspect.isawaitable(value):
        return loop().run_until_complete(value)
    return value


def call(method: Callable[[], object]) -> Any:
    """``method()``, run to its end on the worker's loop if it is ``async def`` (a scenario's
    ``setup`` or ``teardown``)."""
    return resolve(method())


def cancel_pending(seconds: float = 1.0) -> int:
    """Cancel the tasks left on the worker's loop (a scenario that started tasks and did not wait
    for them), waiting at most ``seconds`` for them to end; how many there were."""
    if _LOOP is None or _LOOP.is_closed():
        return 0
    left = [t for t in asyncio.all_tasks(_LOOP) if not t.done()]
    for task in left:
        task.cancel()
    if left:
        _LOOP.run_until_complete(asyncio.wait(left, timeout=seconds))
    return len(left)


def team_for(concurrent: bool, size: int, clock: Clock) -> Team | Tasks:
    """Threads for a synchronous scenario, tasks on the loop for an async one."""
    return Tasks(size, clock) if concurrent else Team(size, clock)


class NotAwaited(Exception):
    """A synchronous scenario's ``run`` returned an awaitable: what was timed is the making of a
    coroutine, not the operation (never a verdict on that)."""


def _synchronous(out: object) -> None:
    if inspect.isawaitable(out):
        close = getattr(out, "close", None)
        if close is not None:
            close()
        raise NotAwaited(
            "run() returned an awaitable that would never be awaited: declare use() (or run()) "
            "async def, and poolbench runs it on an event loop"
        )


def _held() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


def reference_work(n: int) -> None:
    """A fixed mix of interpreter work: the yardstick ``compare`` normalizes times by.

    Small dicts, lists, strings and tuples made and dropped, attribute-free arithmetic: what the
    scenarios spend their time on, with no pool and nothing a scenario or poolbench version can
    change. Timed in every round of every worker, on the cell's threads, next to its values.
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


MIN_TASK_LOOPS = 16
"""Batches a task runs at least in a value when tasks share a loop (see :meth:`Tasks.run`)."""


def calibrate(time_ops: Callable[[int], int], batch: int, min_time_ns: int, *, least: int = 0) -> int:
    """Operations per thread (a multiple of ``batch``) for one value to last ``min_time_ns``.

    Doubles from one batch until a run lasts long enough (pyperf calibrates the same way), after
    one discarded run (a first call pays for cold caches, first-time code and waking threads).
    The count found is checked by timing twice as many: a run that takes much less than twice as
    long was made of a fixed cost (threads waking up), not of operations, and doubling goes on.
    Without the check, worker-tasks calibrated to 1 or 2 operations a value in some processes
    (110 µs per operation where 256 read 4 µs), and an identical run read 29x slower. Doubling
    starts at ``least`` operations, if more than one batch.
    """
    time_ops(batch)
    n = batch
    while n < least:
        n *= 2
    while True:
        elapsed = time_ops(n)
        if n >= 1 << 32:
            return n
        if elapsed >= min_time_ns and time_ops(2 * n) >= 1.5 * elapsed:
            return n
        n *= 2
