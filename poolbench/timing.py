"""Timing inside a worker: a team of threads started on a barrier, the clock, calibration, and
the reference workload. Nothing here knows about pools, scenarios or result files."""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import repeat

Clock = Callable[[], int]


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
                task(index)
                spans[index] = (start, clock())
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                self._errors.append(exc)
            self._end.wait()

    def run(self, task: Callable[[int], None]) -> int:
        """Run ``task(thread_index)`` on every thread at once; the wall time in clock units.

        With threads, from the first thread's start to the last one's end, as the threads read
        the clock themselves: the barriers' own hand-offs (0.12 ms at 2 threads, 0.27 ms at 4
        under the GIL, measured here) would otherwise be timed with every value."""
        clock = self._clock
        if self.size == 1:
            start = clock()
            task(0)
            return clock() - start
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


def calibrate(time_ops: Callable[[int], int], batch: int, min_time_ns: int) -> int:
    """Operations per thread (a multiple of ``batch``) for one value to last ``min_time_ns``.

    Doubles from one batch until a run lasts long enough (pyperf calibrates the same way), after
    one discarded run (a first call pays for cold caches, first-time code and waking threads).
    The count found is checked by timing twice as many: a run that takes much less than twice as
    long was made of a fixed cost (threads waking up), not of operations, and doubling goes on.
    Without the check, worker-tasks calibrated to 1 or 2 operations a value in some processes
    (110 µs per operation where 256 read 4 µs), and an identical run read 29x slower.
    """
    time_ops(batch)
    n = batch
    while True:
        elapsed = time_ops(n)
        if n >= 1 << 32:
            return n
        if elapsed >= min_time_ns and time_ops(2 * n) >= 1.5 * elapsed:
            return n
        n *= 2
