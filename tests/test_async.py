"""Async scenarios: tasks on one event loop share a pool, every pass awaits the user's code, counts
match the synchronous ones, and AsyncBoundedPool serves waiters in order."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from typer.testing import CliRunner

from poolbench import Scenario
from poolbench.cli import app
from poolbench.counting import count_group, memray_available
from poolbench.errors import PoolClosed, PoolMisuse, PoolTimeout
from poolbench.measure import measure_group
from poolbench.pools import AsyncBoundedPool
from poolbench.settings import SMOKE, Settings
from poolbench.strategies import build_strategies
from poolbench.timing import NotAwaited, Tasks

needs_memray = pytest.mark.skipif(not memray_available(), reason="memray is not installed")


class Small(Scenario):
    name = "small"

    def new(self):
        return bytearray(100)

    def use(self, buf):
        buf[0] = 1


class AsyncSmall(Small):
    name = "async-small"

    async def use(self, buf):
        buf[0] = 1


class Counted(Scenario):
    """Counts the bodies that ran, to show every op's coroutine was awaited to its end."""

    name = "counted"

    def setup(self):
        self.ran = 0

    def new(self):
        return []

    async def use(self, obj):
        await asyncio.sleep(0)
        self.ran += 1


def _figures(scenario, pools, members, **kw):
    strategies = build_strategies(scenario, pools, members)
    return strategies, measure_group(scenario, strategies, members, SMOKE, **kw)


def test_an_async_use_is_awaited_in_every_operation_timed():
    scenario = Counted()
    scenario.setup()
    _, figures = _figures(scenario, ["none", "sync"], 4, detail=False)
    timed = sum((len(f.run.values) + len(f.run.warmups)) * f.run.loops * 4 for f in figures.values())
    # Every timed op ran its body; calibration's runs come on top.
    assert scenario.ran >= timed > 0


def test_a_scenario_is_async_when_use_or_run_is_a_coroutine_function():
    class OwnRun(Scenario):
        name = "own-run"

        async def run(self, n, get, put):
            pass

    assert AsyncSmall.is_async() and OwnRun.is_async() and not Small.is_async()
    a, own = AsyncSmall(), OwnRun()
    assert a.timed() == a.run_async and own.timed() == own.run


def test_a_synchronous_run_that_returns_a_coroutine_is_never_timed():
    class Sneaky(Scenario):
        name = "sneaky"

        def new(self):
            return 1

        def run(self, n, get, put):
            return asyncio.sleep(0)  # a coroutine made, never awaited

    with pytest.raises(NotAwaited, match="never be awaited"):
        _figures(Sneaky(), ["none"], 1, detail=False)


@needs_memray
@pytest.mark.parametrize("concurrency", [1, 16])
def test_bytearray_per_op_counts_the_same_async_as_synchronous_and_zero_pooled(concurrency):
    def counts(scenario, members):
        strategies = build_strategies(scenario, ["none", "sync"], members)
        found = count_group(scenario, strategies, members, 400)
        return {
            k: (v.allocs.allocations / v.allocs.ops, v.allocs.bytes / v.allocs.ops) for k, v in found.items()
        }

    plain = counts(Small(), 1)
    assert plain["sync"] == (0.0, 0.0) and plain["none"][0] == 2.0
    first, second = counts(AsyncSmall(), concurrency), counts(AsyncSmall(), concurrency)
    assert first == second == plain


def test_tasks_time_from_the_first_start_to_the_last_end():
    ticks = iter(range(0, 10_000, 10))
    team = Tasks(3, lambda: next(ticks))
    order = []

    async def task(index):
        order.append(index)
        await asyncio.sleep(0)
        order.append(index)

    assert team.run(task) == 50  # starts at 0, 10, 20; ends at 30, 40, 50
    assert order == [0, 1, 2, 0, 1, 2]


def test_each_task_warms_up_before_it_reads_the_clock_so_a_value_starts_from_objects_in_circulation():
    now = [0]
    team = Tasks(3, lambda: now[0])
    order = []

    async def warm(index):
        order.append(("warm", index))
        now[0] += 1000  # a first step that faults the heap in: never timed
        await asyncio.sleep(0)

    async def task(index):
        order.append(("task", index))
        now[0] += 10
        await asyncio.sleep(0)

    assert team.run(task, warm) == 30  # the three tasks' own steps, not the 3,000 ns of warm steps
    assert [o for o in order if o[0] == "warm"] == [("warm", 0), ("warm", 1), ("warm", 2)]
    assert all(order.index(("warm", i)) < order.index(("task", i)) for i in range(3))


def test_a_value_of_tasks_sharing_a_loop_holds_at_least_min_task_loops_operations_a_task():
    from poolbench.timing import MIN_TASK_LOOPS

    now = [0]

    class Costed(Scenario):  # 100 ns an operation on a fake clock: one batch lasts long enough
        name = "async-costed"

        def new(self):
            return []

        async def run(self, n, get, put):
            now[0] += 100 * n

    settings = Settings(min_processes=1, max_processes=1, max_seconds=0, values=2, warmups=0,
                        min_time=1e-9, latency_steps=1, gc_values=1, count_ops=10)  # fmt: skip

    def spend(n):  # the reference workload, 50 ns a loop
        now[0] += 50 * n

    def loops(tasks):
        scenario = Costed()
        found = measure_group(scenario, build_strategies(scenario, ["none", "sync"], tasks), tasks, settings,
                              clock=lambda: now[0], detail=False, reference=spend)  # fmt: skip
        return {f.run.loops for f in found.values()}

    # 16 tasks each run MIN_TASK_LOOPS batches a value (the warm step's end falls into the value:
    # at most 1/(2n) of it); one task has nothing to warm, and calibration stops at one batch.
    assert loops(16) == {MIN_TASK_LOOPS}
    assert loops(1) == {1}


def test_a_value_counts_the_warm_steps_that_end_inside_it_so_time_per_op_is_the_op_s_own():
    now = [0]

    class Costed(Scenario):  # 100 ns an operation on a fake clock, every task's warm step included
        name = "async-costed"

        def new(self):
            return []

        async def run(self, n, get, put):
            now[0] += 100 * n

    settings = Settings(min_processes=1, max_processes=1, max_seconds=0, values=3, warmups=0,
                        min_time=1e-9, latency_steps=1, gc_values=1, count_ops=10)  # fmt: skip

    def spend(n):
        now[0] += 50 * n

    for tasks in (1, 16):
        scenario = Costed()
        found = measure_group(scenario, build_strategies(scenario, ["none", "sync"], tasks), tasks, settings,
                              clock=lambda: now[0], detail=False, reference=spend)  # fmt: skip
        # The tasks after the first run their warm step after the first one read the clock: a
        # value's span holds 15 batches more than it times; counted as operations, 100 ns each.
        assert {v for f in found.values() for v in f.run.values} == {100.0}, tasks


# AsyncBoundedPool


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_async_bounded_pool_serves_waiters_first_come_first_served():
    async def main():
        made = iter(range(100))
        pool = AsyncBoundedPool(lambda: next(made), max_size=1, timeout=None)
        first = await pool.get()
        served = []

        async def waiter(name):
            obj = await pool.get()
            served.append(name)
            await asyncio.sleep(0)
            pool.put(obj)

        tasks = [asyncio.ensure_future(waiter(n)) for n in "abc"]
        await asyncio.sleep(0)
        pool.put(first)
        await asyncio.gather(*tasks)
        return served, pool.stats()

    served, stats = run(main())
    assert served == ["a", "b", "c"]
    assert stats.misses == 1 and stats.waits == 3 and stats.in_use == 0 and stats.retained == 1


def test_async_bounded_pool_times_out_and_counts_it():
    async def main():
        pool = AsyncBoundedPool(object, max_size=1, timeout=0.01)
        held = await pool.get()
        with pytest.raises(PoolTimeout, match=r"within 0\.01 s"):
            await pool.get()
        pool.put(held)
        again = await pool.get()  # the timed-out waiter left no trace
        return again is held, pool.stats()

    same, stats = run(main())
    assert same and stats.timeouts == 1 and stats.waits == 1 and stats.wait_seconds >= 0.005


def test_async_bounded_pool_hands_an_object_on_when_its_waiter_was_cancelled():
    async def main():
        pool = AsyncBoundedPool(object, max_size=1, timeout=None)
        held = await pool.get()
        first = asyncio.ensure_future(pool.get())
        second = asyncio.ensure_future(pool.get())
        await asyncio.sleep(0)
        pool.put(held)  # handed to `first`...
        first.cancel()  # ...which is cancelled before it runs
        got = await second
        return got is held, first.cancelled(), pool.stats().in_use

    assert run(main()) == (True, True, 1)


def test_async_bounded_pool_borrow_aclose_and_misuse():
    async def main():
        disposed = []

        async def dispose(obj):
            disposed.append(obj)

        pool = AsyncBoundedPool(list, max_size=1, timeout=None, dispose=dispose)
        async with pool.borrow() as obj:
            assert pool.stats().in_use == 1
        with pytest.raises(PoolMisuse):
            pool.put(obj)
        held = await pool.get()
        waiting = asyncio.ensure_future(pool.get())
        await asyncio.sleep(0)
        await pool.aclose()
        with pytest.raises(PoolClosed):
            await waiting
        with pytest.raises(PoolClosed):
            await pool.get()
        pool.put(held)  # disposed: the pool is closed
        await asyncio.sleep(0)
        return len(disposed)

    assert run(main()) == 1


def test_async_bounded_pool_awaits_an_async_new_and_frees_the_place_of_one_that_fails():
    async def main():
        calls = []

        async def new():
            calls.append(1)
            if len(calls) == 1:
                raise OSError("connection refused")
            return object()

        pool = AsyncBoundedPool(new, max_size=1, timeout=0.5)
        with pytest.raises(OSError):
            await pool.get()
        return await pool.get() is not None, pool.stats().misses

    assert run(main()) == (True, 2)


# Through the command line, in worker processes

ASYNC_SCENARIOS = '''
import asyncio
from poolbench import Scenario


class Hold(Scenario):
    """Holds its object for a fixed time: a pool that makes callers wait."""

    name = "hold"
    params = {"size": 1024}

    def new(self):
        return bytearray(self.params["size"])

    async def use(self, buf):
        buf[0] = 1
        await asyncio.sleep(0)


class Broken(Scenario):
    name = "async-broken"

    def new(self):
        return []

    async def use(self, obj):
        await asyncio.sleep(0)
        raise RuntimeError("handler broke")


class Hangs(Scenario):
    name = "async-hangs"

    def new(self):
        return []

    async def use(self, obj):
        await asyncio.sleep(3600)


class Blocks(Scenario):
    """Blocks the loop without awaiting: no task can run, and no timer fires."""

    name = "async-blocks"

    def new(self):
        return []

    async def use(self, obj):
        import time

        time.sleep(3600)


class Leaves(Scenario):
    name = "async-leaves"

    def new(self):
        return []

    async def use(self, obj):
        if not getattr(self, "started", False):
            self.started = True
            asyncio.ensure_future(asyncio.sleep(3600))
'''


@pytest.fixture
def async_dir(tmp_path):
    folder = tmp_path / "async_scenarios"
    folder.mkdir()
    (folder / "hold.py").write_text(ASYNC_SCENARIOS)
    return folder


def test_run_measures_an_async_scenario_at_each_concurrency(async_dir, tmp_path):
    out = tmp_path / "a.json"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "hold",
            "--scenarios-dir",
            str(async_dir),
            "-c",
            "1,4",
            "-P",
            "none,sync,bounded",
            "--quick",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tasks" in result.output
    data = json.loads(out.read_text())
    cells = {(c["pool"], c["concurrency"]): c for c in data["cells"]}
    assert set(cells) == {(p, c) for p in ("none", "sync", "bounded") for c in (1, 4)}
    assert all(c["threads"] == 1 and c["status"] == "ok" for c in cells.values())
    assert data["config"]["concurrency"] == [1, 4]
    csv = CliRunner().invoke(app, ["show", str(out), "--format", "csv"])
    assert csv.exit_code == 0 and "concurrency" in csv.output.splitlines()[0]


def test_concurrency_for_synchronous_scenarios_only_is_a_usage_error():
    result = CliRunner().invoke(app, ["run", "bytes-buffer", "-c", "4", "--quick"])
    assert result.exit_code == 2 and "--concurrency applies to async scenarios" in result.output


def test_an_async_scenario_that_raises_fails_its_cells_and_one_that_leaves_tasks_is_warned(
    async_dir, tmp_path
):
    out = tmp_path / "b.json"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "async-broken",
            "async-leaves",
            "--scenarios-dir",
            str(async_dir),
            "-c",
            "2",
            "--quick",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    cells = {(c["scenario"], c["pool"]): c for c in json.loads(out.read_text())["cells"]}
    assert cells[("async-broken", "sync")]["status"] == "failed"
    assert "handler broke" in cells[("async-broken", "sync")]["error"]
    leaves = cells[("async-leaves", "sync")]
    assert leaves["status"] == "ok" and any("pending" in w for w in leaves["warnings"])


def test_tasks_team_run_between_brackets_only_the_work():
    events = []
    team = Tasks(3, time.perf_counter_ns)

    async def work():
        events.append("work")
        await asyncio.sleep(0)

    team.run_between(work, lambda: events.append("begin"), lambda: events.append("end"))
    assert events == ["begin", "work", "work", "work", "end"]


LEAKY = """
import asyncio
from poolbench import Scenario


class AsyncLeak(Scenario):
    name = "async-leak"

    def new(self):
        return bytearray(8)

    async def use(self, buf):
        await asyncio.sleep(0)

    async def run(self, n, get, put):
        for i in range(n):
            obj = get()
            await self.use(obj)
            if put is not None and i % 10:
                put(obj)  # every tenth is never returned
"""


def test_the_doctor_checks_async_scenarios_and_finds_a_leak_at_the_users_line(tmp_path):
    from poolbench.diagnosis import diagnose
    from poolbench.discovery import discover

    (tmp_path / "leaky.py").write_text(LEAKY)
    found = discover([tmp_path], include_cwd=False, entry_points=False)
    [leaky] = diagnose(found.lookup(["async-leak"]), ["sync"], ops=50)
    assert leaky.error is None and {f.kind for f in leaky.findings} == {"leak"}
    assert all("leaky.py:" in f.site for f in leaky.findings)
    clean = diagnose(discover().lookup(["async-buffer"]), ["sync", "bounded"], ops=200)
    assert [(d.pool, d.findings, d.error) for d in clean] == [("sync", [], None), ("bounded", [], None)]


def test_an_async_scenario_that_hangs_or_blocks_the_loop_fails_at_the_timeout(async_dir, tmp_path):
    out = tmp_path / "c.json"
    result = CliRunner().invoke(
        app,
        ["run", "async-hangs", "async-blocks", "--scenarios-dir", str(async_dir), "-c", "2", "--quick",
         "--timeout", "3", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output
    cells = json.loads(out.read_text())["cells"]
    assert {c["status"] for c in cells} == {"failed"}
    assert all("timed out after 3 s" in c["error"] for c in cells)


def test_an_80_column_table_of_a_waiting_pool_keeps_its_verdicts():
    import random

    from rich.console import Console

    from poolbench.render.table import result_tables
    from poolbench.report import report
    from poolbench.result import Cell, Result, Run

    rnd = random.Random(1)

    def cell(pool, time_ns, speedup=None):
        runs = [Run(1000, [time_ns * rnd.uniform(0.99, 1.01) for _ in range(10)], [],
                    [speedup * rnd.uniform(0.99, 1.01) for _ in range(10)] if speedup else [],
                    [50.0] * 10) for _ in range(4)]  # fmt: skip
        stats = {"waits": 12, "wait_seconds": 0.5, "timeouts": 0, "in_use": 0} if pool == "bounded" else None
        return Cell("hold", pool, 1, {"batch": 1}, runs=runs, concurrency=16, pool_stats=stats)

    result = Result({"python_version": "3.11.7"}, {"mode": "quick"},
                    [cell("none", 5000.0), cell("bounded", 2500.0, 2.0)], complete=True)  # fmt: skip
    console = Console(width=80, record=True)
    console.print(result_tables(result, report(result), 80))
    shown = console.export_text()
    assert "verdict" in shown and "pooling wins" in shown and "tasks" in shown


def test_uvloop_runs_the_cells_is_recorded_and_compare_warns_across_loops(async_dir, tmp_path):
    pytest.importorskip("uvloop")
    files = {}
    for loop in ("asyncio", "uvloop"):
        files[loop] = tmp_path / f"{loop}.json"
        result = CliRunner().invoke(app, ["run", "hold", "--scenarios-dir", str(async_dir), "-c", "1,4",
                                          "--quick", "--loop", loop, "-o", str(files[loop])])  # fmt: skip
        assert result.exit_code == 0, result.output
        data = json.loads(files[loop].read_text())
        assert data["config"]["loop"] == loop and data["config"]["settings"]["loop"] == loop
        assert all(c["status"] == "ok" for c in data["cells"])
    if memray_available():
        # The workers ran the loop asked for: uvloop's trip through the loop allocates less than
        # asyncio's (counted exactly: 16 against 27 per op for async-buffer here).
        counted = {
            loop: {c["concurrency"]: c["counts"][0]["allocs_per_op"]
                   for c in json.loads(path.read_text())["cells"] if c["pool"] == "none"}
            for loop, path in files.items()
        }  # fmt: skip
        assert all(counted["uvloop"][c] < counted["asyncio"][c] for c in (1, 4)), counted
    compared = CliRunner().invoke(app, ["compare", str(files["asyncio"]), str(files["uvloop"])])
    assert "different event loops (asyncio -> uvloop)" in compared.output, compared.output
    same = CliRunner().invoke(app, ["compare", str(files["uvloop"]), str(files["uvloop"])])
    assert "different event loops" not in same.output


def test_the_loop_a_worker_runs_is_the_one_asked_for():
    pytest.importorskip("uvloop")
    import uvloop

    from poolbench import timing

    try:
        timing.use_loop("uvloop")
        timing.cancel_pending()
        if timing._LOOP is not None:
            timing._LOOP.close()
        assert isinstance(timing.loop(), uvloop.Loop)
    finally:
        timing.use_loop("asyncio")
        timing.loop().close()
    assert not isinstance(timing.loop(), uvloop.Loop)


@pytest.mark.parametrize(
    "args, message",
    [
        (["bytes-buffer", "--loop", "uvloop"], "--loop uvloop applies to async scenarios"),
        (["async-buffer", "--loop", "trio"], "unknown event loop 'trio'"),
    ],
)
def test_a_loop_that_cannot_apply_is_a_usage_error(args, message):
    result = CliRunner().invoke(app, ["run", *args, "--quick"])
    assert result.exit_code == 2 and message in result.output, result.output


CHECKED_PROGRAM = """
import asyncio
from poolbench.pools import AsyncBoundedPool


async def handler(pool, request):
    buf = await pool.get()
    await asyncio.sleep(0.3)
    if request == 0:
        pool.put(buf)  # the first request returns its buffer; the others keep theirs


async def main():
    pool = AsyncBoundedPool(lambda: bytearray(16), max_size=8)
    await asyncio.gather(*(handler(pool, request) for request in range(3)))


asyncio.run(main())
"""


def test_poolbench_check_finds_leaks_and_objects_held_across_awaits_in_async_code(tmp_path):
    import os
    import subprocess
    import sys

    program = tmp_path / "service.py"
    program.write_text(CHECKED_PROGRAM)
    env = {**os.environ, "POOLBENCH_CHECK": "advanced", "POOLBENCH_CHECK_HELD": "0.1"}
    done = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "Traceback" not in err, err
    # Held across `await asyncio.sleep(0.3)`, past the 0.1 s threshold: reported while it runs, at
    # the user's get, not asyncio's.
    assert "held-too-long" in err and "service.py:7" in err, err
    # Two of the three handlers never put theirs back: leaks, at the same line.
    assert "leak x2 at" in err and "service.py:7 in handler" in err and "dirty-reuse" not in err, err


@pytest.mark.parametrize("batch", [1, 4])
def test_an_awaited_put_is_awaited_in_every_operation(batch):
    returned = []

    async def get():
        return bytearray(8)

    async def put(obj):  # asyncpg's and psycopg's pools: a release is a round trip
        await asyncio.sleep(0)
        returned.append(obj)

    scenario = AsyncSmall({"batch": batch})
    asyncio.run(scenario.run_async(8, get, put))
    assert len(returned) == 8 and all(buf[0] == 1 for buf in returned)


class Opened(Scenario):
    """Counts its new() calls in ``counters``: a connection opened per unpooled operation."""

    name = "opened"

    def setup(self):
        self.opened = 0

    def new(self):
        self.opened += 1
        return []

    def use(self, obj):
        pass

    def counters(self):
        return {"connections": self.opened}


class AsyncOpened(Opened):
    name = "async-opened"

    async def use(self, obj):
        await asyncio.sleep(0)


@pytest.mark.parametrize("kind,members", [(Opened, 1), (Opened, 2), (AsyncOpened, 1), (AsyncOpened, 8)])
def test_counted_events_are_per_1000_operations_of_the_strategy_warm_steps_included(kind, members):
    scenario = kind()
    scenario.setup()
    _, figures = _figures(scenario, ["none", "sync"], members, detail=False)
    # Every unpooled operation opened one, tasks' warm steps too (their operations are counted);
    # the pool's objects were all made before its first value.
    assert figures["none"].run.per_1000_ops == {"connections": 1000.0}
    assert figures["sync"].run.per_1000_ops == {"connections": 0.0}


def test_a_scenario_without_counters_reports_none():
    scenario = AsyncSmall()
    _, figures = _figures(scenario, ["none", "sync"], 2, detail=False)
    assert figures["none"].run.per_1000_ops == {} and figures["sync"].run.per_1000_ops == {}


def test_an_async_counters_is_refused_in_one_line():
    class Eager(Opened):
        name = "eager"

        async def counters(self):
            return {"connections": 0}

    assert Eager.not_runnable() == (
        "Eager.counters() cannot be async def: poolbench and its pools call it without awaiting"
    )
