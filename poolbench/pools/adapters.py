"""Adapters for other libraries' pools, registered as plugins (entry-point group ``poolbench.pools``).

A pool plugin is any callable ``factory(new, **options) -> poolbench.pools.Pool`` published under
the entry-point group ``poolbench.pools``; the entry point's name is the strategy name
``poolbench run --pool`` takes. These two adapters are poolbench's own plugins:

* ``sqlalchemy``: SQLAlchemy's ``QueuePool`` (``pip install poolbench[sqlalchemy]``);
* ``psycopg``: ``psycopg_pool.ConnectionPool`` (``pip install poolbench[postgres]``), for
  PostgreSQL connections made by psycopg 3.

and two for asyncio code (an async scenario awaits their ``get`` and their ``put``):

* ``asyncpg``: ``asyncpg.Pool`` (``pip install poolbench[asyncpg]``), for connections made by
  asyncpg (``await asyncpg.connect(...)``); its release resets the connection, a round trip;
* ``psycopg-async``: ``psycopg_pool.AsyncConnectionPool`` (``pip install poolbench[postgres]``),
  for ``psycopg.AsyncConnection``.

and two for HTTP clients (the ``http-client`` scenario, ``pip install poolbench[http]``):

* ``urllib3``: urllib3's ``HTTPConnectionPool`` (``HTTPSConnectionPool`` for https), its
  connections made with the scenario's ``new``; ``get`` and ``put`` are the pool's own checkout
  and checkin (``_get_conn``/``_put_conn``, what its ``urlopen`` does around every request), so
  a dropped connection is replaced as urllib3 replaces it;
* ``httpx``: one ``httpx.Client`` shared by every thread, its connection pool of ``max_size``
  connections inside it; ``get`` hands out that client and ``put`` takes nothing back (httpx
  checks a connection out and in within each request);
* ``aiohttp`` (asyncio): one ``aiohttp.ClientSession`` shared by the tasks, its ``TCPConnector``
  keeping ``max_size`` connections; handed out like httpx's client.

All take ``max_size`` and ``timeout`` like :class:`~poolbench.pools.BoundedPool`, expose
``max_size`` (so the doctor's quarantine stays below it) and are checked like poolbench's own
pools: ``POOLBENCH_CHECK`` and ``checked(pool)`` find a leaked connection with the site that took
it, and ``POOLBENCH_CHECK_HELD`` one held too long, with the stack that took it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Awaitable, Iterator
from typing import Any

from ..errors import PoolTimeout
from ._base import New, Pool, PoolStats, count_value
from ._checked import maybe_check


class _Waits:
    """The waits of a pool that counts none of its own, counted around its blocking checkout:
    ``with self._waits.timed(TheirTimeout): return checkout()``, where ``TheirTimeout`` becomes
    :class:`~poolbench.errors.PoolTimeout`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = self.timeouts = 0
        self.seconds = 0.0

    @contextlib.contextmanager
    def timed(self, timeout: type[BaseException]) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        except timeout as exc:
            with self.lock:
                self.timeouts += 1
            raise PoolTimeout(str(exc).splitlines()[0]) from None
        finally:
            with self.lock:
                self.count += 1
                self.seconds += time.monotonic() - start

    def stats(self, strategy: str, misses: int, retained: int, in_use: int | None = None) -> PoolStats:
        return PoolStats(strategy, misses=misses, drops=0, retained=retained, in_use=in_use, waits=self.count,
                         wait_seconds=self.seconds, timeouts=self.timeouts)  # fmt: skip


class SQLAlchemyQueuePool(Pool[Any]):
    """SQLAlchemy's ``QueuePool`` (no overflow): ``get`` checks out, ``put`` checks in."""

    strategy = "sqlalchemy"

    def __init__(
        self, new: New[Any], *, max_size: int = 5, timeout: float | None = 30.0, **_options: Any
    ) -> None:
        from sqlalchemy.pool import QueuePool

        self.max_size = max_size  # how many connections may exist: the doctor's quarantine stays below it
        self._misses = itertools.count()
        misses = self._misses

        def creator() -> Any:
            next(misses)
            return new()

        self._pool = QueuePool(creator, pool_size=max_size, max_overflow=0, timeout=timeout or 3600.0)
        self._size = max_size
        self._waits = _Waits()
        maybe_check(self)

    def get(self) -> Any:
        from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

        if self._pool.checkedout() < self._size:
            try:
                return self._pool.connect()
            except SQLAlchemyTimeout:
                pass  # another thread took the last one: this get waits after all
        with self._waits.timed(SQLAlchemyTimeout):
            return self._pool.connect()  # QueuePool does not count waits: measure them here

    def put(self, obj: Any) -> None:
        obj.close()  # returns the connection to the QueuePool

    def clear(self) -> None:
        self._pool.dispose()

    def stats(self) -> PoolStats:
        return self._waits.stats(self.strategy, count_value(self._misses), self._pool.checkedin(),
                                 self._pool.checkedout())  # fmt: skip


class PsycopgPool(Pool[Any]):
    """``psycopg_pool.ConnectionPool`` making its connections with ``new`` (a psycopg 3 connect)."""

    strategy = "psycopg"

    def __init__(
        self, new: New[Any], *, max_size: int = 5, timeout: float | None = 30.0, **_options: Any
    ) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        probe = new()
        if not isinstance(probe, psycopg.Connection):
            raise TypeError(
                f"the psycopg pool needs psycopg connections, not {type(probe).__name__} (use it with db=postgres)"
            )
        probe.close()
        self.max_size = max_size  # how many connections may exist: the doctor's quarantine stays below it
        self._misses = itertools.count()
        misses = self._misses

        class _Made(psycopg.Connection):
            @classmethod
            def connect(cls, *args: Any, **kwargs: Any) -> Any:  # the pool's way to make one
                next(misses)
                return new()

        def open_pool() -> Any:
            return ConnectionPool(
                "",
                connection_class=_Made,
                min_size=1,
                max_size=max_size,
                timeout=timeout or 3600.0,
                open=True,
            )

        self._open = open_pool
        self._pool = open_pool()
        self._past: dict[str, int] = {}
        maybe_check(self)

    @staticmethod
    def fingerprint(conn: Any) -> Any:
        """What a checking pool compares a connection by: open or closed, in a transaction or
        not, autocommit (its other state changes with every query and says nothing of misuse)."""
        return (conn.closed, str(conn.info.transaction_status), conn.autocommit)

    def get(self) -> Any:
        from psycopg_pool import PoolTimeout as PsycopgTimeout

        try:
            return self._pool.getconn()
        except PsycopgTimeout as exc:
            raise PoolTimeout(str(exc)) from None

    def put(self, obj: Any) -> None:
        self._pool.putconn(obj)

    def clear(self) -> None:
        """Close the idle connections and go on with a fresh pool (``close()`` alone would leave
        this one unusable: psycopg_pool has no call that drops idle connections only)."""
        old, self._pool = self._pool, self._open()
        _retire(self._past, old)
        old.close()

    def stats(self) -> PoolStats:
        return _psycopg_stats(self.strategy, count_value(self._misses), self._pool, self._past)


def _now(done: Awaitable[Any]) -> None:
    """Run ``done`` to its end: on the worker's loop when none runs (a harness between passes),
    else as a task of the running one (a caller in async code)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        from ..timing import resolve

        resolve(done)
        return
    task: asyncio.Task[Any] = running.create_task(done)  # type: ignore[arg-type]
    _closing.add(task)
    task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[Any]] = set()


_WAITS = ("requests_queued", "requests_wait_ms", "requests_errors")


def _retire(past: dict[str, int], pool: Any) -> None:
    """Keep the wait counters of a psycopg pool that ``clear`` replaces (they are the run's)."""
    s = pool.get_stats()
    for key in _WAITS:
        past[key] = past.get(key, 0) + s.get(key, 0)


def _psycopg_stats(strategy: str, misses: int, pool: Any, past: dict[str, int]) -> PoolStats:
    """psycopg_pool's counters in poolbench's terms: a queued request is a wait, an errored one a
    timeout; those of the pools ``clear`` replaced included."""
    s = pool.get_stats() if pool is not None else {}
    total = {key: s.get(key, 0) + past.get(key, 0) for key in _WAITS}
    return PoolStats(
        strategy,
        misses=misses,
        drops=0,
        retained=s.get("pool_available", 0),
        in_use=s.get("pool_size", 0) - s.get("pool_available", 0),
        waits=total["requests_queued"],
        wait_seconds=total["requests_wait_ms"] / 1000,
        timeouts=total["requests_errors"],
    )


class AsyncpgPool(Pool[Any]):
    """``asyncpg.Pool`` making its connections with ``new`` (``async def new(): return await
    asyncpg.connect(dsn)``). ``await get()`` acquires, ``await put(conn)`` releases (asyncpg
    resets the connection there: a round trip to the server, part of what this pool costs).

    asyncpg counts no waits: an acquire that finds every connection out and the pool at
    ``max_size`` is counted and timed here."""

    strategy = "asyncpg"

    def __init__(self, new: Any, *, max_size: int = 5, timeout: float | None = 30.0, **_options: Any) -> None:
        import asyncpg  # noqa: F401 - fail here, where the plugin is chosen, if it is not installed

        self.max_size = max_size  # how many connections may exist: the doctor's quarantine stays below it
        self.timeout = timeout
        self._new = new
        self._misses = itertools.count()
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._waits = self._timeouts = 0
        self._wait_seconds = 0.0
        maybe_check(self)

    async def _opened(self) -> Any:
        if self._pool is None:
            async with self._opening:  # the tasks that arrive while it opens wait for this one pool
                if self._pool is None:
                    import asyncpg

                    misses, new = self._misses, self._new

                    async def connect(*_args: Any, **_kwargs: Any) -> Any:  # asyncpg's hook: new()
                        next(misses)
                        return await new()

                    self._pool = await asyncpg.create_pool(
                        connect=connect, min_size=1, max_size=self.max_size
                    )
        return self._pool

    @staticmethod
    def fingerprint(conn: Any) -> Any:
        """Open or closed, in a transaction or not: what a reused connection must not carry over.
        A connection put back is asyncpg's proxy, released: asyncpg itself refuses any use of it."""
        if getattr(conn, "_con", True) is None:
            return "released"
        return (conn.is_closed(), conn.is_in_transaction())

    async def get(self) -> Any:
        pool = await self._opened()
        if pool.get_idle_size() or pool.get_size() < self.max_size:
            return await pool.acquire(timeout=self.timeout)
        start = time.monotonic()
        try:
            return await pool.acquire(timeout=self.timeout)
        except TimeoutError:
            self._timeouts += 1
            raise PoolTimeout(
                f"no connection came back within {self.timeout:g} s (all {self.max_size} are out)",
                hint="raise max_size, or return connections sooner",
            ) from None
        finally:
            self._waits += 1
            self._wait_seconds += time.monotonic() - start

    async def put(self, obj: Any) -> None:  # type: ignore[override]
        await self._pool.release(obj)

    def clear(self) -> None:
        """Close the idle connections: the next get opens a fresh pool."""
        old, self._pool = self._pool, None
        if old is not None:
            _now(old.close())

    async def aclose(self) -> None:
        old, self._pool = self._pool, None
        if old is not None:
            await old.close()

    def stats(self) -> PoolStats:
        pool = self._pool
        return PoolStats(self.strategy, misses=count_value(self._misses), drops=0,
                         retained=pool.get_idle_size() if pool is not None else 0,
                         in_use=pool.get_size() - pool.get_idle_size() if pool is not None else 0, waits=self._waits,
                         wait_seconds=self._wait_seconds, timeouts=self._timeouts)  # fmt: skip


class PsycopgAsyncPool(Pool[Any]):
    """``psycopg_pool.AsyncConnectionPool`` making its connections with ``new`` (``async def
    new(): return await psycopg.AsyncConnection.connect(dsn)``); ``await get()`` and ``await
    put(conn)``, its own wait counters."""

    strategy = "psycopg-async"
    fingerprint = staticmethod(PsycopgPool.fingerprint)

    def __init__(self, new: Any, *, max_size: int = 5, timeout: float | None = 30.0, **_options: Any) -> None:
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        self.max_size = max_size  # how many connections may exist: the doctor's quarantine stays below it
        self._misses = itertools.count()
        misses = self._misses

        class _Made(psycopg.AsyncConnection):
            @classmethod
            async def connect(cls, *args: Any, **kwargs: Any) -> Any:  # the pool's way to make one
                next(misses)
                made = await new()
                if not isinstance(made, psycopg.AsyncConnection):
                    raise TypeError(
                        f"the psycopg-async pool needs psycopg.AsyncConnection, not {type(made).__name__}"
                    )
                return made

        def make() -> Any:
            return AsyncConnectionPool("", connection_class=_Made, min_size=1, max_size=max_size,
                                       timeout=timeout or 3600.0, open=False)  # fmt: skip

        self._make = make
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._past: dict[str, int] = {}
        maybe_check(self)

    async def _opened(self) -> Any:
        if self._pool is None:
            async with self._opening:  # the tasks that arrive while it opens wait for this one pool
                if self._pool is None:
                    pool = self._make()
                    await pool.open(wait=True)
                    self._pool = pool
        return self._pool

    async def get(self) -> Any:
        from psycopg_pool import PoolTimeout as PsycopgTimeout

        pool = await self._opened()
        try:
            return await pool.getconn()
        except PsycopgTimeout as exc:
            raise PoolTimeout(str(exc)) from None

    async def put(self, obj: Any) -> None:  # type: ignore[override]
        await self._pool.putconn(obj)

    def clear(self) -> None:
        """Close the idle connections: the next get opens a fresh pool."""
        old, self._pool = self._pool, None
        if old is not None:
            _retire(self._past, old)
            _now(old.close())

    async def aclose(self) -> None:
        old, self._pool = self._pool, None
        if old is not None:
            _retire(self._past, old)
            await old.close()

    def stats(self) -> PoolStats:
        return _psycopg_stats(self.strategy, count_value(self._misses), self._pool, self._past)


class Urllib3Pool(Pool[Any]):
    """urllib3's ``HTTPConnectionPool``: ``get`` checks a connection out, ``put`` checks it in."""

    strategy = "urllib3"

    def __init__(
        self,
        new: New[Any],
        *,
        max_size: int = 1,
        timeout: float | None = 30.0,
        url: str = "",
        tls: Any = None,
        **_options: Any,
    ) -> None:
        from urllib.parse import urlsplit

        import urllib3

        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError("pool=urllib3 needs the scenario's url= option (http-client gives it)")
        self.max_size = max_size
        self._misses = itertools.count()
        misses = self._misses
        base: Any = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool

        class Made(base):  # type: ignore[misc]
            def _new_conn(self) -> Any:
                next(misses)
                return new()

        options: dict[str, Any] = {"ssl_context": tls} if parts.scheme == "https" else {}
        host, port = parts.hostname, parts.port

        def made() -> Any:
            return Made(host, port, maxsize=max_size, block=True, **options)

        self._made = made
        self._pool = made()
        self._timeout = timeout
        self._waits = _Waits()
        maybe_check(self)

    def get(self) -> Any:
        import urllib3

        pool = self._pool
        if pool.pool is not None and not pool.pool.empty():
            return pool._get_conn(timeout=self._timeout)  # an idle connection (or a new one if dropped)
        with self._waits.timed(urllib3.exceptions.EmptyPoolError):
            return pool._get_conn(timeout=self._timeout)  # every connection is out: this get waits

    def put(self, obj: Any) -> None:
        self._pool._put_conn(obj)

    def clear(self) -> None:
        """Close the idle connections: a closed urllib3 pool refuses every later checkout, so a
        fresh one takes its place."""
        old, self._pool = self._pool, self._made()
        old.close()

    def stats(self) -> PoolStats:
        idle = self._pool.pool.qsize() if self._pool.pool is not None else 0
        return self._waits.stats(self.strategy, count_value(self._misses), idle)


class HttpxPool(Pool[Any]):
    """One ``httpx.Client`` shared by the threads: its connection pool holds ``max_size``."""

    strategy = "httpx"

    def __init__(
        self,
        new: New[Any],
        *,
        max_size: int = 1,
        timeout: float | None = 30.0,
        url: str = "",
        tls: Any = None,
        **_options: Any,
    ) -> None:
        import httpx

        self.max_size = max_size
        limits = httpx.Limits(max_connections=max_size, max_keepalive_connections=max_size)

        def make() -> Any:
            return httpx.Client(verify=tls or False, timeout=timeout, limits=limits)

        self._make = make
        self._client = self._make()
        self._made = 1
        maybe_check(self)

    def get(self) -> Any:
        return self._client

    def put(self, obj: Any) -> None:
        pass  # httpx checked its connection back in when the response was read

    def clear(self) -> None:
        """Close the client's connections; the next ``get`` hands out a new client."""
        self._client.close()
        self._client = self._make()
        self._made += 1

    def stats(self) -> PoolStats:
        return PoolStats(self.strategy, misses=self._made, drops=0, retained=1)


class AiohttpPool(Pool[Any]):
    """One ``aiohttp.ClientSession`` shared by the tasks: its connector keeps ``max_size``."""

    strategy = "aiohttp"

    def __init__(
        self,
        new: New[Any],
        *,
        max_size: int = 1,
        timeout: float | None = 30.0,
        tls: Any = None,
        **_options: Any,
    ) -> None:
        self.max_size = max_size
        self._tls = tls
        self._timeout = timeout
        self._session: Any = None
        self._made = 0
        maybe_check(self)

    def get(self) -> Any:
        session = self._session
        if session is None or session.closed:  # made on the running loop, at the first get
            import aiohttp

            connector = aiohttp.TCPConnector(limit=self.max_size, ssl=self._tls or False)
            timeout = aiohttp.ClientTimeout(total=self._timeout)
            session = self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
            self._made += 1
        return session

    def put(self, obj: Any) -> None:
        pass  # aiohttp released the connection to its connector when the response was read

    def clear(self) -> None:
        """Close the session and its connections; the next ``get`` makes a new session."""
        session, self._session = self._session, None
        if session is not None:
            _now(session.close())

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def stats(self) -> PoolStats:
        return PoolStats(
            self.strategy, misses=self._made, drops=0, retained=0 if self._session is None else 1
        )
