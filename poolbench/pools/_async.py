"""``AsyncBoundedPool``: the connection-pool shape for asyncio code (asyncpg's and psycopg's pools).

Everything happens on one event loop, so there is no lock: the pool's state changes only between
awaits. Waiters are served first come first served, and an object put back while a task waits is
handed to that task directly (no other task can take it first); a waiter's timeout is a timer
that resolves its future, so an object and a timeout can never both reach it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from ..errors import PoolClosed, PoolMisuse, PoolTimeout
from ._base import Accept, Pool, PoolStats, Reset, T
from ._checked import maybe_check

_DEFAULT = -1.0
_CREATE: Any = object()
"""A waiter's future resolves to this when it may create an object (one was let go), else to a
1-tuple holding the object handed over."""


class AsyncBoundedPool(Pool[T]):
    """At most ``max_size`` objects exist; ``await get()`` waits for one to come back when all
    are out. ``new`` (and ``dispose``) may be plain functions or ``async def``.

    ::

        pool = AsyncBoundedPool(connect, max_size=8, timeout=5.0, dispose=close)
        async with pool.borrow() as conn:
            await conn.execute("select 1")

    ``await get(timeout=...)`` raises :class:`PoolTimeout` when nothing came back in time
    (default: the pool's ``timeout``; ``None`` waits forever). ``put(obj)`` is a plain call (it
    never waits). After ``await aclose()``, ``get`` raises :class:`PoolClosed`, waiters get it
    too, and objects put back are disposed of. ``stats()`` counts ``waits``, ``wait_seconds``
    and ``timeouts``; a ``put`` while no object is out raises :class:`PoolMisuse`.
    """

    strategy = "bounded"

    def __init__(
        self,
        new: Callable[[], T | Awaitable[T]],
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
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._existing = 0  # objects created (or being created) and not let go
        self._out = 0
        self._closed = False
        self._gets = self._puts = self._misses = self._drops = self._cleared = 0
        self._waits = self._timeouts = 0
        self._wait_seconds = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()  # disposals under way (an async dispose)
        maybe_check(self)

    async def get(self, timeout: float | None = _DEFAULT) -> T:  # type: ignore[override]
        """Take an object: an idle one, a new one while fewer than ``max_size`` exist, else the
        next one put back (waiting at most ``timeout`` seconds)."""
        self._gets += 1
        if self._closed:
            raise PoolClosed("get() on a closed pool")
        if not self._waiters:
            if self._idle:
                self._out += 1
                obj = self._idle.pop()
                if self._reset is not None:
                    self._reset(obj)
                return obj
            if self._existing < self.max_size:
                self._existing += 1
                self._misses += 1
                self._out += 1
                return await self._make()
        got = await self._wait(self.timeout if timeout == _DEFAULT else timeout)
        if got is _CREATE:
            return await self._make()
        obj = got[0]
        if self._reset is not None:
            self._reset(obj)
        return obj

    async def _make(self) -> T:
        """A new object, counted as out already; a failure frees its place for the next waiter."""
        try:
            made = self._new()
            if inspect.isawaitable(made):
                made = await made
        except BaseException:
            self._existing -= 1
            self._out -= 1
            self._wake_creator()
            raise
        return made

    async def _wait(self, timeout: float | None) -> Any:
        """Queue behind the other waiters until an object is handed over or may be made."""
        self._waits += 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiters.append(future)
        start = time.monotonic()
        timer = None
        if timeout is not None:
            timer = loop.call_later(max(timeout, 0.0), self._expire, future, timeout)
        try:
            return await future
        except asyncio.CancelledError:
            # Cancelled (by the caller) after an object was handed over: give it to the next.
            if future.done() and not future.cancelled() and future.exception() is None:
                self._handed_back(future.result())
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self._wait_seconds += time.monotonic() - start
            if not future.done():
                future.cancel()
            try:
                self._waiters.remove(future)
            except ValueError:
                pass

    def _expire(self, future: asyncio.Future[Any], timeout: float) -> None:
        if not future.done():
            self._timeouts += 1
            future.set_exception(
                PoolTimeout(
                    f"no object came back within {timeout:g} s (all {self.max_size} are out)",
                    hint="raise max_size, or return objects sooner",
                )
            )

    def _handed_back(self, got: Any) -> None:
        """A hand-over its waiter will not take (it was cancelled): pass it on."""
        self._out -= 1
        if got is _CREATE:
            self._existing -= 1
            self._wake_creator()
        else:
            self._give(got[0])

    def put(self, obj: T) -> None:
        """Give an object back: to the first waiter, else to the idle ones; never waits."""
        if self._out <= 0:
            raise PoolMisuse("put() with no object out: the same object was put twice")
        self._out -= 1
        self._puts += 1
        if self._closed or (self._accept is not None and not self._accept(obj)):
            self._existing -= 1
            if not self._closed:
                self._drops += 1
            self._let_go(obj)
            self._wake_creator()
            return
        self._give(obj)

    def _give(self, obj: T) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                self._out += 1
                future.set_result((obj,))
                return
        self._idle.append(obj)

    def _wake_creator(self) -> None:
        """A place freed: the first waiter may make an object."""
        while self._waiters and self._existing < self.max_size and not self._closed:
            future = self._waiters.popleft()
            if not future.done():
                self._existing += 1
                self._misses += 1
                self._out += 1
                future.set_result(_CREATE)
                return

    def _let_go(self, obj: T) -> None:
        if self._dispose is None:
            return
        done = self._dispose(obj)
        if inspect.isawaitable(done):
            task = asyncio.ensure_future(done)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def clear(self) -> None:
        idle = list(self._idle)
        self._idle.clear()
        self._existing -= len(idle)
        self._cleared += len(idle)
        for obj in idle:
            self._let_go(obj)
        self._wake_creator()

    async def aclose(self) -> None:
        """Dispose of the idle objects, fail the waiters with :class:`PoolClosed` and refuse
        further gets; objects out are disposed of when put back."""
        self._closed = True
        self.clear()
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_exception(PoolClosed("the pool was closed while this get() waited"))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[T]:  # type: ignore[override]
        """``async with pool.borrow() as obj:`` takes an object and always puts it back."""
        obj = await self.get()
        try:
            yield obj
        finally:
            self.put(obj)

    async def __aenter__(self) -> AsyncBoundedPool[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def stats(self) -> PoolStats:
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
