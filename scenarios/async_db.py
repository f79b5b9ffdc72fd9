"""Database connections per request in an asyncio service: connect, query, close; or a pooled
connection. PostgreSQL through asyncpg or through psycopg's async connections."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from itertools import repeat
from typing import Any

from poolbench import Scenario, SkipScenario

_ROWS = 1000
_LOCK = 0x706F6F6C  # the advisory lock that serializes seeding ("pool")
_POOLED = ("bounded", "asyncpg", "psycopg-async")
_DRIVERS = {"asyncpg": "asyncpg", "psycopg": "psycopg-async"}
"""Each driver's own pool plugin (``--pool``)."""


class AsyncDb(Scenario):
    """One request of a handler: run a query on a connection. Unpooled, every request connects and
    closes; pooled, it takes a connection from the pool and gives it back (``--pool bounded``, or
    the driver's own pool: ``asyncpg`` or ``psycopg-async``)."""

    name = "async-db"
    description = (
        "per request: connect, query, close (unpooled) vs a pooled connection; asyncpg or psycopg async"
    )
    params = {"driver": "asyncpg", "query": "point", "pool_size": 4, "dsn": ""}
    choices = {"driver": ("asyncpg", "psycopg"), "query": ("point", "insert", "mixed")}

    async def setup(self) -> None:
        self.serial = 0
        dsn = self.params["dsn"] or os.environ.get("POOLBENCH_PG_DSN", "")
        if not dsn:
            raise SkipScenario(
                "async-db needs a server: pass -p dsn=postgresql://user@host/db or set POOLBENCH_PG_DSN"
            )
        driver = self.params["driver"]
        try:
            if driver == "asyncpg":
                import asyncpg

                self.connect: Callable[[], Any] = lambda: asyncpg.connect(dsn)
                self.marker = "$1"
            else:
                import psycopg

                self.connect = lambda: psycopg.AsyncConnection.connect(dsn, autocommit=True)
                self.marker = "%s"
        except ImportError:
            extra = "asyncpg" if driver == "asyncpg" else "postgres"
            raise SkipScenario(f"driver={driver} needs {driver}: pip install 'poolbench[{extra}]'") from None
        conn = await self.connect()
        try:
            await self._seed(conn)
        finally:
            await conn.close()

    async def _seed(self, conn: Any) -> None:
        # The tables are shared by every worker process (several run side by side while counting):
        # made once, under an advisory lock, and never dropped while another process may read them.
        statements = [
            f"select pg_advisory_lock({_LOCK})",
            "create table if not exists poolbench_async_items (id integer primary key, name text, qty integer)",
            "create table if not exists poolbench_async_events (item integer, note text)",
            f"insert into poolbench_async_items select i, 'item ' || i, i % 7 from generate_series(0, {_ROWS - 1}) i "
            "on conflict do nothing",
            f"select pg_advisory_unlock({_LOCK})",
        ]
        for statement in statements:
            await conn.execute(statement)

    async def new(self) -> Any:
        return await self.connect()

    def fingerprint(self, conn: Any) -> Any:
        # What a reused connection must not carry over (an open transaction, a closed connection):
        # the pool plugins' own fingerprint of each driver's connections.
        from poolbench.pools.adapters import AsyncpgPool, PsycopgPool

        if self.params["driver"] == "asyncpg":
            return AsyncpgPool.fingerprint(conn)
        return PsycopgPool.fingerprint(conn)

    async def use(self, conn: Any) -> None:
        self.serial = n = self.serial + 1
        query = self.params["query"]
        m = self.marker
        if query == "point" or (query == "mixed" and n % 4):
            sql = f"select name, qty from poolbench_async_items where id = {m}"
            if self.params["driver"] == "asyncpg":
                row = await conn.fetchrow(sql, n % _ROWS)
            else:
                row = await (await conn.execute(sql, (n % _ROWS,))).fetchone()
            if row is None:
                raise AssertionError("seeded row missing")
        else:
            sql = f"insert into poolbench_async_events values ({m}, {'$2' if m == '$1' else m})"
            if self.params["driver"] == "asyncpg":
                await conn.execute(sql, n % _ROWS, "seen")
            else:
                await conn.execute(sql, (n % _ROWS, "seen"))

    async def run(self, n: int, get: Callable[[], Any], put: Callable[[Any], Any] | None) -> None:
        use = self.use
        if put is None:
            for _ in repeat(None, n):
                conn = await get()
                await use(conn)
                await conn.close()
            return
        if inspect.iscoroutinefunction(put):  # asyncpg's and psycopg's release is a round trip
            for _ in repeat(None, n):
                conn = await get()
                await use(conn)
                await put(conn)
            return
        for _ in repeat(None, n):  # AsyncBoundedPool: a plain put
            conn = await get()
            await use(conn)
            put(conn)

    def pool_options(self, strategy: str, threads: int) -> dict[str, Any]:
        size = self.params["pool_size"]
        driver = self.params["driver"]
        for other, plugin in _DRIVERS.items():
            if strategy == plugin and other != driver:
                raise SkipScenario(f"pool={plugin} takes {other} connections: run it with -p driver={other}")
        if strategy in _POOLED:
            # Fewer connections than tasks is the point of a connection pool: tasks wait.
            return {"max_size": size, "timeout": 30.0}
        return {}
