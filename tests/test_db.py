"""Connection pools on real databases: sqlite always, PostgreSQL when a server is given.

.ci/run starts a throwaway PostgreSQL and sets POOLBENCH_PG_DSN; elsewhere the PostgreSQL tests
are skipped with the reason shown.
"""

from __future__ import annotations

import os

import pytest

from poolbench.discovery import discover
from poolbench.pools import PoolTimeout, create_pool, plugins
from poolbench.session import RunRequest, run_session

DSN = os.environ.get("POOLBENCH_PG_DSN", "")
needs_postgres = pytest.mark.skipif(
    not DSN, reason="no PostgreSQL: set POOLBENCH_PG_DSN (.ci/run starts one)"
)


def run(tmp_path, pools, threads=(1,), params=()):
    request = RunRequest(scenarios=("db-connections",), pools=pools, threads=threads, params=params,
                         mode="smoke", out=tmp_path / "db.json", timeout=120)  # fmt: skip
    return {(c.pool, c.threads): c for c in run_session(request).result.cells}


def test_sqlite_connect_per_request_vs_pools(tmp_path):
    cells = run(tmp_path, ("bounded", "sync", "sqlalchemy"), params=("query=mixed",))
    assert all(c.status == "ok" for c in cells.values()), [c.error for c in cells.values()]
    assert cells[("sync", 1)].hit_rate > 0.9


def test_more_threads_than_connections_shows_waiting(tmp_path):
    cells = run(tmp_path, ("bounded", "sqlalchemy"), threads=(4,), params=("pool_size=1",))
    for pool in ("bounded", "sqlalchemy"):
        stats = cells[(pool, 4)].pool_stats
        assert stats["waits"] > 0 and stats["wait_seconds"] > 0, (pool, stats)


def test_postgres_without_a_server_is_skipped_with_how_to(tmp_path, monkeypatch):
    monkeypatch.delenv("POOLBENCH_PG_DSN", raising=False)
    cells = run(tmp_path, ("bounded",), params=("db=postgres",))
    assert {c.status for c in cells.values()} == {"skipped"}
    assert "POOLBENCH_PG_DSN" in cells[("none", 1)].error


def test_pool_plugins_are_found_by_entry_point():
    found, problems = plugins()
    assert {"sqlalchemy", "psycopg"} <= set(found)
    assert problems == []
    assert "db-connections" in discover().builtins()


def test_sqlalchemy_adapter_times_out_like_the_bounded_pool():
    import sqlite3

    pool = create_pool("sqlalchemy", lambda: sqlite3.connect(":memory:", check_same_thread=False),
                       max_size=1, timeout=0.05)  # fmt: skip
    held = pool.get()  # noqa: F841 - held: SQLAlchemy returns a connection when its proxy dies
    with pytest.raises(PoolTimeout):
        pool.get()
    assert pool.stats().timeouts == 1


@needs_postgres
def test_postgres_connect_per_request_vs_pools(tmp_path):
    cells = run(
        tmp_path, ("bounded", "psycopg", "sqlalchemy"), threads=(1, 4), params=("db=postgres", "query=mixed")
    )
    assert all(c.status == "ok" for c in cells.values()), [c.error for c in cells.values()]
    from poolbench.report import report_cell

    for (pool, _threads), cell in cells.items():
        if pool != "none":
            assert report_cell(cell).speedup.ratio > 1, (pool, report_cell(cell).speedup)


@needs_postgres
def test_psycopg_pool_exhaustion_waits(tmp_path):
    cells = run(tmp_path, ("psycopg",), threads=(4,), params=("db=postgres", "pool_size=1"))
    stats = cells[("psycopg", 4)].pool_stats
    assert stats["waits"] > 0, stats
