"""Checking levels (simple, advanced, paranoid), held-too-long, and checked database pools."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from poolbench.pools import FreeListPool, SyncPool, checked

THIS = os.path.abspath(__file__)


def line_of(text: str) -> int:
    """The line of this file that contains ``text`` (a marker comment)."""
    with open(THIS, encoding="utf-8") as f:
        return next(i for i, line in enumerate(f, 1) if text in line and "line_of" not in line)


@pytest.fixture(autouse=True, scope="module")
def no_watchdog_left():
    """Once the checked pools of these tests are gone, so is the watchdog thread: later tests
    count the allocations of their own process, and a thread waking every 10 ms would add some."""
    yield
    import gc

    from poolbench.pools import _watchdog

    deadline = time.monotonic() + 5
    while _watchdog.running() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert not _watchdog.running()


def kinds(pool) -> dict[str, object]:
    return {f.kind: f for f in pool.checker.finish()}


@pytest.fixture(params=["sync", "freelist", "freelist-reset", "locked", "bounded"])
def simple_pool(request):
    """Level simple over pools whose get it rebuilds (sync, freelist, with and without a reset)
    and pools it wraps (locked, bounded: their get takes arguments)."""
    from poolbench.pools import create_pool

    if request.param == "sync":
        return checked(SyncPool(list, sharded=False), level="simple")
    if request.param == "freelist-reset":
        return checked(FreeListPool(list, reset=lambda obj: None), level="simple")
    options = {"max_size": 4, "timeout": 1.0} if request.param == "bounded" else {}
    return checked(create_pool(request.param, list, **options), level="simple")


def test_simple_watches_the_first_object_put_and_finds_a_double_put(simple_pool):
    obj = simple_pool.get()
    simple_pool.put(obj)
    simple_pool.put(obj)  # MARK double
    found = kinds(simple_pool)
    assert list(found) == ["double-put"]
    assert found["double-put"].site == f"{THIS}:{line_of('MARK double')} in {sys._getframe().f_code.co_name}"
    assert simple_pool.get() is obj and simple_pool.get() is not obj  # the second put was not passed on


def test_simple_finds_a_write_after_put_and_a_leak(simple_pool):
    obj = simple_pool.get()
    simple_pool.put(obj)  # MARK put
    obj.append("stale")  # a reference kept after put: the write lands while it is idle
    again = simple_pool.get()  # MARK get
    assert again is obj
    found = kinds(simple_pool)
    assert found["use-after-put"].site.startswith(f"{THIS}:{line_of('MARK put')} ")
    assert f"found at {THIS}:{line_of('MARK get')} " in found["use-after-put"].detail
    assert found["leak"].site.startswith(f"{THIS}:{line_of('MARK get')} ")  # taken, never put back


def test_simple_finds_dirty_reuse_against_a_fresh_object():
    pool = checked(SyncPool(list, sharded=False), level="simple")
    obj = pool.get()
    obj.append(1)
    pool.put(obj)  # no reset
    pool.put(pool.get())
    assert list(kinds(pool)) == ["dirty-reuse"]


def test_simple_leaves_correct_code_alone_and_samples_again_later(simple_pool, monkeypatch):
    import poolbench.pools._sampler as sampling

    monkeypatch.setattr(sampling, "SAMPLE_PERIOD", 0.0)
    sampler = simple_pool.checker.flush.__self__
    watched = 0
    for i in range(200):
        obj = simple_pool.get()
        obj.clear()
        simple_pool.put(obj)
        if i % 50 == 0:
            sampler.tick(time.monotonic() + 1)  # what the watchdog thread does
        watched += sampler.obj is not None
    assert watched >= 3  # each tick armed a new sample
    assert simple_pool.checker.finish() == []


def test_simple_costs_nothing_on_get_while_no_object_is_watched():
    inner = SyncPool(list, sharded=False)
    items = inner.get.fast_parts[0]  # the deque the pool's get pops from
    pool = checked(inner, level="simple")
    pool.put(pool.get())
    pool.put(pool.get())  # the first object put made one round trip: no longer watched
    popped = pool.get.__defaults__[0]
    assert getattr(popped, "__self__", None) is items and popped.__name__ == "pop"  # that deque's own pop


def test_advanced_records_recent_sites_of_a_leaked_object():
    pool = checked(FreeListPool(list), level="advanced")
    obj = pool.get()
    pool.put(obj)
    obj = pool.get()  # MARK leaked
    leak = kinds(pool)["leak"]
    assert leak.site.startswith(f"{THIS}:{line_of('MARK leaked')} ")
    assert "recent: get at" in leak.detail and "put at" in leak.detail


def test_levels_are_checked():
    with pytest.raises(ValueError, match="unknown checking level 'loud'"):
        checked(SyncPool(list), level="loud")
    with pytest.raises(ValueError, match="held must be a positive"):
        checked(SyncPool(list), held=0)


@pytest.mark.parametrize("level", ["simple", "paranoid"])
def test_an_object_held_too_long_is_reported_once_while_the_program_runs(level, capsys):
    pool = checked(FreeListPool(list), level=level, held=0.05)
    obj = pool.get()
    pool.put(obj)
    obj = pool.get()  # MARK held
    time.sleep(0.4)
    err = capsys.readouterr().err
    assert err.count("held-too-long") == 1, err
    assert f"{THIS}:{line_of('MARK held')} in test_an_object_held_too_long" in err
    assert "taken by:" in err and "threshold 0.05 s" in err
    pool.put(obj)
    found = kinds(pool)
    assert found["held-too-long"].count == 1 and "leak" not in found


def run_checked(program: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POOLBENCH_CHECK")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(program)], capture_output=True, text=True,
                          env={**clean, **env}, timeout=60)  # fmt: skip


LEAKY = """
    from poolbench.pools import SyncPool
    pool = SyncPool(bytearray)
    buf = pool.get()
    pool.put(buf)
    buf = pool.get()  # line 6: never returned
"""


@pytest.mark.parametrize("level", ["simple", "advanced", "paranoid", "1"])
def test_the_environment_variable_names_the_level(level):
    done = run_checked(LEAKY, POOLBENCH_CHECK=level)
    assert done.returncode == 0
    assert "leak x1 at <string>:6" in done.stderr, done.stderr


def test_bad_environment_values_say_so_and_the_program_still_runs():
    done = run_checked(LEAKY, POOLBENCH_CHECK="loud", POOLBENCH_CHECK_HELD="soon")
    assert done.returncode == 0
    assert "unknown POOLBENCH_CHECK='loud'" in done.stderr
    assert "POOLBENCH_CHECK_HELD='soon' is not a positive number" in done.stderr
    assert "leak x1 at <string>:6" in done.stderr  # checked at paranoid


def test_a_connection_held_too_long_is_reported_from_the_environment():
    program = """
        import sqlite3, time
        from poolbench.pools.adapters import SQLAlchemyQueuePool
        pool = SQLAlchemyQueuePool(lambda: sqlite3.connect(":memory:", check_same_thread=False), max_size=2)
        conn = pool.get()  # line 5
        conn.execute("select 1")
        time.sleep(0.5)
        pool.put(conn)
        print("done")
    """
    done = run_checked(program, POOLBENCH_CHECK="advanced", POOLBENCH_CHECK_HELD="0.1")
    assert done.returncode == 0 and "done" in done.stdout, done.stderr
    assert "held-too-long" in done.stderr and "<string>:5" in done.stderr, done.stderr


def test_a_leaked_sqlalchemy_connection_is_found_where_it_was_taken():
    pytest.importorskip("sqlalchemy")
    from poolbench.pools.adapters import SQLAlchemyQueuePool

    pool = checked(
        SQLAlchemyQueuePool(lambda: sqlite3.connect(":memory:", check_same_thread=False), max_size=3)
    )
    for _ in range(5):
        conn = pool.get()
        conn.execute("select 1")
        pool.put(conn)
    leaked = pool.get()  # MARK connection
    assert leaked is not None
    found = kinds(pool)
    assert list(found) == ["leak"], found
    assert found["leak"].site.startswith(f"{THIS}:{line_of('MARK connection')} ")


@pytest.mark.skipif(
    not os.environ.get("POOLBENCH_PG_DSN"), reason="no PostgreSQL: set POOLBENCH_PG_DSN (.ci/run starts one)"
)
def test_a_leaked_psycopg_connection_is_found_where_it_was_taken():
    psycopg = pytest.importorskip("psycopg")
    from poolbench.pools.adapters import PsycopgPool

    dsn = os.environ["POOLBENCH_PG_DSN"]
    pool = checked(PsycopgPool(lambda: psycopg.connect(dsn, autocommit=True), max_size=3), held=60)
    leaked = None
    try:
        for _ in range(3):
            conn = pool.get()
            conn.execute("select 1")
            pool.put(conn)
        leaked = pool.get()  # MARK psycopg
        found = kinds(pool)
        assert list(found) == ["leak"], found
        assert found["leak"].site.startswith(f"{THIS}:{line_of('MARK psycopg')} ")
    finally:
        if leaked is not None:
            pool.put(leaked)
        pool._pool.close()  # psycopg_pool's own: its __del__ would join its workers from the collector
