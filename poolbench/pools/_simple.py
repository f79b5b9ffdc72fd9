"""The baseline, the free list, and the two naive pools people write (kept to measure against)."""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from typing import Any

from ._base import Accept, New, Pool, PoolStats, Reset, T, count_value, fast_get, with_counting
from ._checked import maybe_check


class NoPool(Pool[T]):
    """The baseline: ``get()`` always calls ``new()``, ``put()`` drops the object.

    ::

        pool = NoPool(dict)
        record = pool.get()     # a fresh dict, every time
    """

    strategy = "none"

    def __init__(self, new: New[T], **_options: Any) -> None:
        self._misses = itertools.count()
        misses = self._misses

        def get(new: New[T] = new) -> T:
            next(misses)
            return new()

        def put(obj: T) -> None:
            pass

        self.get = get  # type: ignore[method-assign]
        self.put = put  # type: ignore[method-assign]
        maybe_check(self)

    def clear(self) -> None:
        pass

    def stats(self) -> PoolStats:
        misses = count_value(self._misses)
        return PoolStats(self.strategy, misses=misses, drops=0, retained=0, gets=misses)


class FreeListPool(Pool[T]):
    """A LIFO free list that retains at most ``max_retained`` objects.

    ::

        pool = FreeListPool(list, reset=list.clear, max_retained=256)
        rows = pool.get()
        ...
        pool.put(rows)

    It is a ``deque(maxlen=max_retained)``: ``put`` is ``deque.append`` itself, and when the list
    is full the append pushes out the *oldest* idle object, so the warmest ones stay. That keeps
    the bound exact under threads with no lock; the push-outs are counted (``evicted``) only with
    ``counting=True``, since counting them would cost every ``put``.
    """

    strategy = "freelist"

    def __init__(
        self,
        new: New[T],
        *,
        max_retained: int = 128,
        reset: Reset[T] | None = None,
        accept: Accept[T] | None = None,
        counting: bool = False,
    ) -> None:
        if max_retained < 0:
            raise ValueError(f"max_retained must be >= 0, not {max_retained}")
        self.max_retained = max_retained
        self._items: deque[T] = deque(maxlen=max_retained)
        self._misses, self._drops = itertools.count(), itertools.count()
        self._gets, self._puts = itertools.count(), itertools.count()
        self._counting = counting
        self._cleared = 0
        items, misses, drops = self._items, self._misses, self._drops

        def slow(new: New[T] = new) -> T:
            next(misses)
            return new()

        get: Any = fast_get(items, slow, reset)
        put: Any = items.append
        if accept is not None:

            def put(obj: T, append: Any = items.append, accept: Accept[T] = accept) -> None:
                if accept(obj):
                    append(obj)
                else:
                    next(drops)

        if counting:
            get, put = with_counting(get, put, self._gets, self._puts)
        self.get = get  # type: ignore[method-assign]
        self.put = put  # type: ignore[method-assign]
        maybe_check(self)

    def clear(self) -> None:
        while True:
            try:
                self._items.pop()
            except IndexError:
                return
            self._cleared += 1

    def stats(self) -> PoolStats:
        misses, drops, retained = count_value(self._misses), count_value(self._drops), len(self._items)
        gets = puts = evicted = None
        if self._counting:
            gets, puts = count_value(self._gets), count_value(self._puts)
            # Every object put either was refused, came out again, is still here, was cleared,
            # or was pushed out by the bound: the last is what remains.
            evicted = puts - drops - (gets - misses) - retained - self._cleared
        return PoolStats(
            self.strategy,
            misses=misses,
            drops=drops,
            retained=retained,
            gets=gets,
            puts=puts,
            evicted=evicted,
            cleared=self._cleared,
        )


class LockedPool(Pool[T]):
    """The pool most people write first: a list guarded by a ``threading.Lock``.

    Kept as a reference: it is correct, but every get and put takes the lock, and with several
    threads the lock is contended. ``max_retained=None`` retains without bound.
    """

    strategy = "locked"

    def __init__(
        self,
        new: New[T],
        *,
        max_retained: int | None = None,
        reset: Reset[T] | None = None,
        accept: Accept[T] | None = None,
        counting: bool = False,
    ) -> None:
        self._new, self._reset, self._accept = new, reset, accept
        self._max = max_retained
        self._items: list[T] = []
        self._lock = threading.Lock()
        # ``counting`` is accepted like every pool's, and needs nothing: gets and puts are counted
        # under the lock this pool takes anyway.
        self._gets = self._puts = self._misses = self._drops = self._cleared = 0
        maybe_check(self)

    def get(self) -> T:
        with self._lock:
            self._gets += 1
            if not self._items:
                self._misses += 1
                reuse = False
            else:
                obj = self._items.pop()
                reuse = True
        if not reuse:
            return self._new()
        if self._reset is not None:
            self._reset(obj)
        return obj

    def put(self, obj: T) -> None:
        if self._accept is not None and not self._accept(obj):
            with self._lock:
                self._drops += 1
            return
        with self._lock:
            self._puts += 1
            if self._max is None or len(self._items) < self._max:
                self._items.append(obj)
            else:
                self._drops += 1

    def clear(self) -> None:
        with self._lock:
            self._cleared += len(self._items)
            self._items.clear()

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(
                self.strategy,
                misses=self._misses,
                drops=self._drops,
                retained=len(self._items),
                # Counted under the lock the pool takes anyway: they cost nothing extra.
                gets=self._gets,
                puts=self._puts,
                cleared=self._cleared,
            )


class QueuePool(Pool[T]):
    """A pool over ``queue.LifoQueue``, the other common naive design; kept as a reference.

    ``get_nowait``/``put_nowait`` each take the queue's internal lock and notify its conditions.
    """

    strategy = "queue"

    def __init__(
        self,
        new: New[T],
        *,
        max_retained: int | None = None,
        reset: Reset[T] | None = None,
        accept: Accept[T] | None = None,
        counting: bool = False,
    ) -> None:
        self._new, self._reset, self._accept = new, reset, accept
        self._queue: queue.LifoQueue[T] = queue.LifoQueue(maxsize=max_retained or 0)
        self._misses, self._drops = itertools.count(), itertools.count()
        self._gets, self._puts = itertools.count(), itertools.count()
        self._counting = counting
        self._cleared = 0
        maybe_check(self)

    def get(self) -> T:
        if self._counting:
            next(self._gets)
        try:
            obj = self._queue.get_nowait()
        except queue.Empty:
            next(self._misses)
            return self._new()
        if self._reset is not None:
            self._reset(obj)
        return obj

    def put(self, obj: T) -> None:
        if self._counting:
            next(self._puts)
        if self._accept is not None and not self._accept(obj):
            next(self._drops)
            return
        try:
            self._queue.put_nowait(obj)
        except queue.Full:
            next(self._drops)

    def clear(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self._cleared += 1

    def stats(self) -> PoolStats:
        counting = self._counting
        return PoolStats(
            self.strategy,
            misses=count_value(self._misses),
            drops=count_value(self._drops),
            retained=self._queue.qsize(),
            gets=count_value(self._gets) if counting else None,
            puts=count_value(self._puts) if counting else None,
            cleared=self._cleared,
        )
