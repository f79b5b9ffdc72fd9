"""Database connections per request: connect, query, close; or a connection from a pool."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from itertools import repeat
from typing import Any

from poolbench import Scenario, SkipScenario

_ROWS = 1000
_POOLED = ("bounded", "freelist", "sqlalchemy", "psycopg")


class DbConnections(Scenario):
    """One request: run a query on a connection. Unpooled, every request connects and closes."""

    name = "db-connections"
    description = "per request: connect, query, close (unpooled) vs a pooled connection; sqlite or postgres"
    params = {"db": "sqlite", "query": "point", "pool_size": 4, "dsn": ""}
    choices = {"db": ("sqlite", "postgres"), "query": ("point", "insert", "mixed")}

    def setup(self) -> None:
        self.serial = 0
        self.tmp = None
        if self.params["db"] == "postgres":
            self._setup_postgres()
        else:
            self._setup_sqlite()

    def _setup_sqlite(self) -> None:
        # Named after this worker (poolbench-db-PID-...): a killed worker's files are swept.
        self.tmp = tempfile.mkdtemp(prefix=f"poolbench-db-{os.getpid()}-")
        path = os.path.join(self.tmp, "bench.sqlite")
        self.connect: Callable[[], Any] = lambda: sqlite3.connect(
            path, timeout=30, check_same_thread=False, isolation_level=None
        )
        self.marker = "?"
        with self.connect() as conn:
            conn.execute("pragma journal_mode=wal")
            self._seed(conn)

    def _setup_postgres(self) -> None:
        dsn = self.params["dsn"] or os.environ.get("POOLBENCH_PG_DSN", "")
        if not dsn:
            raise SkipScenario(
                "db=postgres needs a server: pass -p dsn=postgresql://user@host/db or set POOLBENCH_PG_DSN"
            )
        try:
            import psycopg
        except ImportError:
            raise SkipScenario("db=postgres needs psycopg 3: pip install 'poolbench[postgres]'") from None
        self.connect = lambda: psycopg.connect(dsn, autocommit=True)
        self.marker = "%s"
        conn = self.connect()
        try:
            self._check_size(conn)
            self._seed(conn)
        finally:
            conn.close()

    def _check_size(self, conn: Any) -> None:
        """A size sweep's size above what the server lets this user open is a row that says so
        (skipped), not a pool that fails or waits out its timeout."""
        size = self.params.get("max_size")
        if not size:
            return
        row = conn.execute(
            "select current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int,"
            " (select rolsuper from pg_roles where rolname = current_user),"
            " (select count(*) from pg_stat_activity where backend_type = 'client backend')"
        ).fetchone()
        most, reserved, superuser, open_now = row
        free = most - (0 if superuser else reserved) - open_now + 1  # this connection closes
        if size > free:
            raise SkipScenario(
                f"max_size={size} is above what the server allows: max_connections {most}"
                + ("" if superuser else f", {reserved} reserved for superusers")
                + f", {open_now - 1} other connections open: at most {free}"
            )

    def _seed(self, conn: Any) -> None:
        # One transaction: in autocommit mode every insert was a commit of its own, and seeding
        # took 0.6 s of each worker process's 0.9 s on sqlite (nothing of it timed, all of it waited).
        conn.execute("begin")
        conn.execute("drop table if exists poolbench_items")
        conn.execute("drop table if exists poolbench_events")
        conn.execute("create table poolbench_items (id integer primary key, name text, qty integer)")
        conn.execute("create table poolbench_events (item integer, note text)")
        for i in range(_ROWS):
            conn.execute(f"insert into poolbench_items values ({i}, 'item {i}', {i % 7})")
        conn.execute("commit")

    def teardown(self) -> None:
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def new(self) -> Any:
        return self.connect()

    def fingerprint(self, conn: Any) -> Any:
        # What a reused connection must not carry over: an open transaction (sqlite3 says so;
        # psycopg connections here are in autocommit mode).
        return getattr(conn, "in_transaction", None)

    def use(self, conn: Any) -> None:
        self.serial = n = self.serial + 1
        query = self.params["query"]
        m = self.marker
        if query == "point" or (query == "mixed" and n % 4):
            row = conn.execute(
                f"select name, qty from poolbench_items where id = {m}", (n % _ROWS,)
            ).fetchone()
            if row is None:
                raise AssertionError("seeded row missing")
        else:
            conn.execute(f"insert into poolbench_events values ({m}, {m})", (n % _ROWS, "seen"))

    def run(self, n: int, get: Callable[[], Any], put: Callable[[Any], None] | None) -> None:
        use = self.use
        if put is None:
            for _ in repeat(None, n):
                conn = get()
                use(conn)
                conn.close()
            return
        for _ in repeat(None, n):
            conn = get()
            use(conn)
            put(conn)

    def pool_options(self, strategy: str, threads: int) -> dict[str, Any]:
        size = self.params["pool_size"]
        if strategy == "freelist":
            return {"max_retained": size}
        if strategy in _POOLED:
            # Fewer connections than threads is the point of a connection pool: threads wait.
            return {"max_size": size, "timeout": 30.0}
        return {}
