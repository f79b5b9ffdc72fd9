"""Adapters for other libraries' pools, registered as plugins (entry-point group ``poolbench.pools``).

A pool plugin is any callable ``factory(new, **options) -> poolbench.pools.Pool`` published under
the entry-point group ``poolbench.pools``; the entry point's name is the strategy name
``poolbench run --pool`` takes. These two adapters are poolbench's own plugins:

* ``sqlalchemy``: SQLAlchemy's ``QueuePool`` (``pip install poolbench[sqlalchemy]``);
* ``psycopg``: ``psycopg_pool.ConnectionPool`` (``pip install poolbench[postgres]``), for
  PostgreSQL connections made by psycopg 3.

Both take ``max_size`` and ``timeout`` like :class:`~poolbench.pools.BoundedPool`, expose
``max_size`` (so the doctor's quarantine stays below it) and are checked like poolbench's own
pools: ``POOLBENCH_CHECK`` and ``checked(pool)`` find a leaked connection with the site that took
it, and ``POOLBENCH_CHECK_HELD`` one held too long, with the stack that took it.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from ..errors import PoolTimeout
from ._base import New, Pool, PoolStats, count_value
from ._checked import maybe_check


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
        self._lock = threading.Lock()
        self._waits = self._timeouts = 0
        self._wait_seconds = 0.0
        maybe_check(self)

    def get(self) -> Any:
        from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

        if self._pool.checkedout() < self._size:
            try:
                return self._pool.connect()
            except SQLAlchemyTimeout:
                pass  # another thread took the last one: this get waits after all
        start = time.monotonic()
        try:
            return self._pool.connect()  # QueuePool does not count waits: measure them here
        except SQLAlchemyTimeout as exc:
            with self._lock:
                self._timeouts += 1
            raise PoolTimeout(str(exc).splitlines()[0]) from None
        finally:
            with self._lock:
                self._waits += 1
                self._wait_seconds += time.monotonic() - start

    def put(self, obj: Any) -> None:
        obj.close()  # returns the connection to the QueuePool

    def clear(self) -> None:
        self._pool.dispose()

    def stats(self) -> PoolStats:
        return PoolStats(self.strategy, misses=count_value(self._misses), drops=0,
                         retained=self._pool.checkedin(), in_use=self._pool.checkedout(), waits=self._waits,
                         wait_seconds=self._wait_seconds, timeouts=self._timeouts)  # fmt: skip


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
        old.close()

    def stats(self) -> PoolStats:
        s = self._pool.get_stats()
        return PoolStats(
            self.strategy,
            misses=count_value(self._misses),
            drops=0,
            retained=s.get("pool_available", 0),
            waits=s.get("requests_queued", 0),
            wait_seconds=s.get("requests_wait_ms", 0) / 1000,
            timeouts=s.get("requests_errors", 0),
        )
