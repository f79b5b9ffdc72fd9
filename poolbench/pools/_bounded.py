"""``BoundedPool``: the connection-pool shape (HikariCP, SQLAlchemy's QueuePool, psycopg_pool)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from ..errors import PoolClosed, PoolMisuse, PoolTimeout
from ._base import Accept, New, Pool, PoolStats, Reset, T
from ._checked import maybe_check

_DEFAULT = -1.0


class BoundedPool(Pool[T]):
    """At most ``max_size`` objects exist; ``get`` waits for one to come back when all are out.

    ::

        pool = BoundedPool(lambda: sqlite3.connect(path), max_size=4, timeout=5.0,
                           dispose=lambda conn: conn.close())
        with pool.borrow() as conn:
            conn.execute("select 1")

    ``get(timeout=...)`` raises :class:`PoolTimeout` when nothing came back in time (default: the
    pool's ``timeout``; ``None`` waits forever). ``dispose`` is called on each object the pool lets
    go (refused by ``accept``, or at ``close()``). After ``close()``, ``get`` raises
    :class:`PoolClosed` and returned objects are disposed of. Waiting is counted: ``waits``,
    ``wait_seconds`` and ``timeouts`` in :meth:`stats`.

    A ``put`` while no object is out is a double put and raises :class:`PoolMisuse`, since
    accepting it would let the pool hand one object to two borrowers.
    """

    strategy = "bounded"

    def __init__(
        self,
        new: New[T],
        *,
        max_size: int = 10,
        timeout: float | None = 30.0,
        reset: Reset[T] | None = None,
        accept: Accept[T] | None = None,
        dispose: Callable[[T], object] | None = None,
        counting: bool = False,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, not {max_size}")
        self.max_size = max_size
        self.timeout = timeout
        self._new, self._reset, self._accept, self._dispose = new, reset, accept, dispose
        self._idle: deque[T] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._existing = 0  # objects created (or being created) and not let go
        self._out = 0
        self._closed = False
        self._gets = self._puts = self._misses = self._drops = self._cleared = 0
        self._waits = self._timeouts = 0
        self._wait_seconds = 0.0
        maybe_check(self)

    def get(self, timeout: float | None = _DEFAULT) -> T:
        if timeout == _DEFAULT:
            timeout = self.timeout
        with self._cond:
            self._gets += 1
            if not self._idle and self._existing >= self.max_size and not self._closed:
                self._wait(timeout)
            if self._closed:
                raise PoolClosed("get() on a closed pool")
            self._out += 1
            if self._idle:
                obj = self._idle.pop()
                create = False
            else:
                self._existing += 1
                self._misses += 1
                create = True
        if not create:
            if self._reset is not None:
                self._reset(obj)
            return obj
        try:
            return self._new()
        except BaseException:
            with self._cond:
                self._existing -= 1
                self._out -= 1
                self._cond.notify()
            raise

    def _wait(self, timeout: float | None) -> None:
        """Wait, holding the condition, until an object is idle or may be created."""
        self._waits += 1
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        try:
            while not self._idle and self._existing >= self.max_size and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._timeouts += 1
                    raise PoolTimeout(
                        f"no object came back within {timeout:g} s (all {self.max_size} are out)",
                        hint="raise max_size, or return objects sooner",
                    )
                self._cond.wait(remaining)
        finally:
            self._wait_seconds += time.monotonic() - start

    def put(self, obj: T) -> None:
        with self._cond:
            if self._out <= 0:
                raise PoolMisuse("put() with no object out: the same object was put twice")
            self._out -= 1
            self._puts += 1
            keep = not self._closed and (self._accept is None or self._accept(obj))
            if keep:
                self._idle.append(obj)
            else:
                self._existing -= 1
                if not self._closed:
                    self._drops += 1
            self._cond.notify()
        if not keep and self._dispose is not None:
            self._dispose(obj)

    def clear(self) -> None:
        with self._cond:
            idle = list(self._idle)
            self._idle.clear()
            self._existing -= len(idle)
            self._cleared += len(idle)
            self._cond.notify_all()
        if self._dispose is not None:
            for obj in idle:
                self._dispose(obj)

    def close(self) -> None:
        """Dispose of the idle objects and refuse further gets; objects out are disposed on put."""
        with self._cond:
            self._closed = True
        self.clear()

    def __enter__(self) -> BoundedPool[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> PoolStats:
        with self._cond:
            return PoolStats(
                self.strategy,
                misses=self._misses,
                drops=self._drops,
                retained=len(self._idle),
                gets=self._gets,
                puts=self._puts,
                cleared=self._cleared,
                in_use=self._out,
                waits=self._waits,
                wait_seconds=self._wait_seconds,
                timeouts=self._timeouts,
            )
