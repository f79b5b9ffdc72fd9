"""Faults, interruptions and load: nothing measured is lost, nothing is cryptic.

The load and stress sizes are reduced by default; POOLBENCH_FULL_LOAD=1 runs the full ones
(300 cells; 10 s per pool strategy) as the README's reliability section reports them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from poolbench import storage
from poolbench.discovery import discover
from poolbench.planning import plan
from poolbench.pools import create_pool
from poolbench.runner import measure_groups
from poolbench.session import RunRequest, run_session
from poolbench.settings import SMOKE

FULL = os.environ.get("POOLBENCH_FULL_LOAD") == "1"


def request(scenarios_ok, tmp_path, *names, **overrides):
    options = {"scenarios": names, "threads": (1,), "mode": "smoke", "out": tmp_path / "out.json",
               "scenario_dirs": (scenarios_ok,), "timeout": 30}  # fmt: skip
    options.update(overrides)
    return RunRequest(**options)


def test_a_worker_killed_by_a_signal_fails_its_cells_with_the_signal_named(scenarios_ok, tmp_path):
    outcome = run_session(request(scenarios_ok, tmp_path, "killed", "tiny"))
    killed = [c for c in outcome.result.cells if c.scenario == "killed"]
    assert killed and all("killed by SIGKILL" in c.error for c in killed)
    assert all(c.status == "ok" for c in outcome.result.cells if c.scenario == "tiny")


def test_a_scenario_that_exhausts_memory_fails_with_memory_error_under_a_limit(scenarios_ok, tmp_path):
    outcome = run_session(request(scenarios_ok, tmp_path, "greedy", "tiny", memory_limit=512 * 1024**2))
    greedy = [c for c in outcome.result.cells if c.scenario == "greedy"]
    assert greedy and all("MemoryError" in c.error for c in greedy)
    assert storage.load(tmp_path / "out.json").complete


def test_an_unwritable_output_is_one_clear_error_before_anything_runs(scenarios_ok, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    from poolbench.errors import ResultFileError

    with pytest.raises(ResultFileError, match=r"file\.txt is a file, not a folder"):
        run_session(request(scenarios_ok, tmp_path, "tiny", out=blocker / "out.json"))


def _workers_alive():
    """Worker processes (started or forked from a template) and templates still running, after a
    moment for those a dying parent's kill is still reaching."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info.get("cmdline") or []
        if "poolbench.worker" in cmd:
            found.append(p)
    _, alive = psutil.wait_procs(found, timeout=5)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def _interrupted(cmd, out, signals):
    """Run ``cmd``, send ``signals`` once ``out`` holds a measured process; its exit code and output."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if any(c["runs"] for c in json.loads(out.read_text())["cells"]):
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    for one in signals:
        proc.send_signal(one)
        time.sleep(0.02)
    output, _ = proc.communicate(timeout=60)
    return proc.returncode, output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, "3xSIGTERM"])
def test_interrupting_a_run_keeps_finished_cells_and_resume_completes_it(scenarios_ok, tmp_path, sig):
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "poolbench", "run", "tiny", "--quick", "-t", "1,2,3,4,5,6",
           "--scenarios-dir", str(scenarios_ok), "-o", str(out)]  # fmt: skip
    returncode, output = _interrupted(cmd, out, [signal.SIGTERM] * 3 if sig == "3xSIGTERM" else [sig])
    assert returncode == 130, output
    assert "saved in" in output and "--resume" in output
    assert "Traceback" not in output
    partial = storage.load(out)
    assert not partial.complete and partial.cells
    assert _workers_alive() == []
    before = {c.key: c.values for c in partial.cells}

    resume = [
        sys.executable,
        "-m",
        "poolbench",
        "run",
        "--resume",
        str(out),
        "--scenarios-dir",
        str(scenarios_ok),
    ]
    done = subprocess.run(resume,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    final = storage.load(out)
    assert final.complete
    assert {c.threads for c in final.cells} == {1, 2, 3, 4, 5, 6}
    assert len(final.cells) == 12
    assert any(before.values())
    for c in final.cells:  # processes finished before the interruption are kept, not measured again
        assert c.values[: len(before.get(c.key, []))] == before.get(c.key, [])
        assert len(c.runs) >= 3  # quick: three processes per (none, pool) pair, more while unsettled


def test_resume_of_a_complete_file_is_refused(scenarios_ok, tmp_path):
    run_session(request(scenarios_ok, tmp_path, "tiny"))
    from poolbench.errors import UsageError

    with pytest.raises(UsageError, match="nothing to resume"):
        run_session(RunRequest(resume=tmp_path / "out.json"))


def test_sixty_four_threads_on_one_cell(scenarios_ok, tmp_path):
    outcome = run_session(
        request(scenarios_ok, tmp_path, "tiny", threads=(64,), pools=("sync", "locked", "bounded"))
    )
    assert all(c.status == "ok" for c in outcome.result.cells), [c.error for c in outcome.result.cells]


def test_a_large_matrix_completes_and_the_parent_stays_flat(scenarios_ok):
    sizes = 150 if FULL else 30  # 300 cells with the full load, 60 by default
    found = discover([scenarios_ok])
    groups = plan(found.lookup(["tiny"]), ["sync"], [1], {"size": [str(s) for s in range(1, sizes + 1)]})
    me = psutil.Process()
    rss = []

    def track(cells):
        rss.append(me.memory_info().rss)

    cells = measure_groups(groups, SMOKE, timeout=60, on_cells=track)
    assert len(cells) == 2 * sizes
    assert all(c.status == "ok" for c in cells)
    third = len(rss) // 3
    assert rss[-1] - rss[third] < 20 * 1024 * 1024, (rss[third], rss[-1])


STRESS_SECONDS = 10.0 if FULL else 1.0


@pytest.mark.parametrize("threads", [8, 32])
@pytest.mark.parametrize("strategy", ["sync", "sync-sharded", "freelist", "bounded", "locked", "queue"])
def test_pools_under_stress_never_hand_one_object_to_two_borrowers(strategy, threads):
    options = {
        "sync": {"sharded": False, "counting": True},
        "sync-sharded": {"sharded": True, "counting": True},
        "freelist": {"max_retained": 16, "counting": True},
        "bounded": {"max_size": threads, "timeout": 30},
        "locked": {"max_retained": 64},
        "queue": {"max_retained": 64, "counting": True},
    }[strategy]

    class Token:
        __slots__ = ("owner",)

        def __init__(self):
            self.owner = None

    pool = create_pool(strategy.split("-")[0], Token, **options)
    stop = time.monotonic() + STRESS_SECONDS
    clashes, counts = [], [0] * threads

    def work(me):
        get, put = pool.get, pool.put
        n = 0
        while time.monotonic() < stop:
            obj = get()
            if obj.owner is not None:
                clashes.append(obj.owner)
            obj.owner = me
            if obj.owner != me:
                clashes.append(me)
            obj.owner = None
            put(obj)
            n += 1
        counts[me] = n

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert clashes == []
    stats = pool.stats()
    total = sum(counts)
    if stats.gets is not None:
        assert stats.gets == total and stats.puts == total
    let_go = stats.drops + (stats.evicted or 0) + stats.gc_dropped + stats.cleared
    assert stats.misses == stats.retained + let_go
    if strategy == "freelist":
        assert stats.retained <= 16
    if strategy == "bounded":
        assert stats.misses <= threads and stats.in_use == 0
    if strategy in ("locked", "queue"):
        assert stats.retained <= 64


TEARDOWNS = """
import time
from poolbench import Scenario

class Hangs(Scenario):
    name = "hangs-in-teardown"

    def new(self):
        return []

    def use(self, obj):
        pass

    def teardown(self):
        time.sleep(3600)

class Raises(Hangs):
    name = "raises-in-teardown"

    def teardown(self):
        raise RuntimeError("teardown broke")
"""


@pytest.mark.parametrize(
    ("name", "said"), [("hangs-in-teardown", "TeardownHung"), ("raises-in-teardown", "teardown broke")]
)
def test_an_answer_is_written_before_teardown_and_a_bad_teardown_only_warns(
    tmp_path, monkeypatch, name, said
):
    from poolbench import worker
    from poolbench.planning import plan
    from poolbench.protocol import REFERENCE, MeasureJob
    from poolbench.settings import SMOKE

    (tmp_path / "teardowns.py").write_text(TEARDOWNS)
    found = discover([tmp_path], include_cwd=False, entry_points=False)
    group = plan(found.lookup([name]), ["sync"], [1], {})[0]
    job = MeasureJob(scenario=group.ref, params=group.params, threads=1, pools=("none", "sync"), settings=SMOKE,
                     layout_seed=1, detail=False, loops={"none": 0, "sync": 0, REFERENCE: 0})  # fmt: skip
    monkeypatch.setattr(worker, "TEARDOWN_SECONDS", 0.3)
    published = []
    answer = worker.measure(job, lambda a: published.append(a.to_json()))
    assert answer.ok and answer.pools["sync"].run.values  # the figures stand
    assert (
        published[0]["warnings"] == [] and published[0]["pools"]["sync"]["run"]["values"]
    )  # before teardown
    assert len(published) == 2 and said in published[-1]["warnings"][0]


def test_a_run_that_fails_before_measuring_leaves_the_callers_signal_handlers(scenarios_ok):
    from typer.testing import CliRunner

    from poolbench.cli import app

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    out = CliRunner().invoke(app, ["run", "no-such-scenario", "--quick"])
    assert out.exit_code == 2
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before


ASYNC_HOLD = """
import asyncio
from poolbench import Scenario


class Hold(Scenario):
    name = "hold"

    def new(self):
        return bytearray(1024)

    async def use(self, buf):
        buf[0] = 1
        await asyncio.sleep(0)
"""


def test_interrupting_an_async_run_keeps_its_cells_and_resume_completes_it(tmp_path):
    folder = tmp_path / "async_scenarios"
    folder.mkdir()
    (folder / "hold.py").write_text(ASYNC_HOLD)
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "poolbench", "run", "hold", "--quick", "-c", "1,2,3,4,5",
           "--scenarios-dir", str(folder), "-o", str(out)]  # fmt: skip
    returncode, output = _interrupted(cmd, out, [signal.SIGINT])
    assert returncode == 130 and "Traceback" not in output, output
    partial = storage.load(out)
    assert not partial.complete
    before = {c.key: c.values for c in partial.cells}
    done = subprocess.run([sys.executable, "-m", "poolbench", "run", "--resume", str(out), "--scenarios-dir",
                           str(folder)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    final = storage.load(out)
    assert final.complete and {c.concurrency for c in final.cells} == {1, 2, 3, 4, 5}
    for c in final.cells:
        assert c.values[: len(before.get(c.key, []))] == before.get(c.key, [])
