"""Instructions and simulated cache misses per operation under Valgrind: parsed, derived by the
difference of two counted runs, repeatable, the same whatever was counted before; missing Valgrind,
failing, dying, hanging and marker-calling scenarios in one line each, the others counted."""

from __future__ import annotations

import json
import shutil

import pytest

from poolbench import instructions
from poolbench.discovery import discover
from poolbench.instructions import (
    CountFailed,
    CountInterrupted,
    Counts,
    Job,
    ValgrindMissing,
    count_jobs,
    count_per_op,
    parse,
)

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="Valgrind is not installed")

OUT = """desc: I1 cache:         32768 B, 64 B, 8-way associative
cmd: python x.py
events: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw
fl=x.c
fn=main
1 10 1 1 4 1 0 2 0 0
summary: 292258963 593660 14989 112455920 3017089 34692 154313809 2277548 89433
"""


def test_cachegrind_totals_are_read_by_event_name():
    c = parse(OUT)
    assert (c.Ir, c.I1mr, c.ILmr, c.DLmw) == (292258963, 593660, 14989, 89433)
    assert c.l1_misses == 593660 + 3017089 + 2277548
    assert c.ll_misses == 14989 + 34692 + 89433
    # KCachegrind's estimate: 10 cycles a first-level miss, 100 a last-level one.
    assert c.est_cycles == c.Ir + 10 * c.l1_misses + 100 * c.ll_misses


def test_callgrind_leaves_out_trailing_zeros_and_orders_events_its_own_way():
    c = parse("events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\nsummary: 3238750 991433 547201 8 3\n")
    assert (c.Ir, c.Dr, c.Dw, c.I1mr, c.D1mr, c.D1mw, c.ILmr, c.DLmr, c.DLmw) == (
        3238750,
        991433,
        547201,
        8,
        3,
        0,
        0,
        0,
        0,
    )


def test_a_file_without_the_cache_simulation_is_refused():
    with pytest.raises(CountFailed, match="cache-sim"):
        parse("events: Ir\nsummary: 100\n")


def test_per_op_figures_are_the_difference_of_two_counts_over_their_operations():
    low = Counts(*[1000.0] * 9)
    high = Counts(*[3000.0] * 9)
    assert high.minus(low).per_op(2000) == Counts(*[1.0] * 9)


def test_missing_valgrind_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    with pytest.raises(ValgrindMissing) as info:
        instructions.valgrind()
    assert info.value.exit_code == 2 and "apt-get install valgrind" in (info.value.hint or "")


def _ref(name, folder=None):
    ((ref, cls),) = discover([folder] if folder else ()).lookup([name])
    return ref, cls.default_params()


@needs_valgrind
def test_counts_repeat_and_a_reused_buffer_saves_the_zeroing_of_a_fresh_one():
    ref, params = _ref("bytes-buffer")  # 64 KiB
    first = {r.strategy: r.counts for r in count_per_op(ref, params, ["none", "sync"], ops=(200, 600))}
    again = {r.strategy: r.counts for r in count_per_op(ref, params, ["none", "sync"], ops=(200, 600))}
    for name in ("none", "sync"):
        assert again[name].Ir == pytest.approx(first[name].Ir, rel=1e-3)  # the bar: 0.1%
    # A fresh 64 KiB bytearray is zeroed: tens of thousands of instructions a reused one skips.
    assert first["none"].Ir - first["sync"].Ir > 30_000


FAILING = """
import asyncio
import os
import time
from poolbench import Scenario


class Broken(Scenario):
    name = "broken"

    def setup(self):
        raise RuntimeError("no database here")

    def new(self):
        return []

    def use(self, obj):
        pass


class Later(Scenario):
    name = "later"

    def new(self):
        return []

    async def use(self, obj):
        await asyncio.sleep(0)


class Dies(Scenario):
    name = "dies"

    def new(self):
        return []

    def use(self, obj):
        os._exit(3)


class Hangs(Scenario):
    name = "hangs"

    def new(self):
        return []

    def use(self, obj):
        time.sleep(3600)


class Marks(Scenario):
    name = "marks"

    def new(self):
        return []

    def use(self, obj):
        os.getppid()  # poolbench's own marker, called by the scenario
"""


def _job(name, folder=None, strategies=("none",), **params):
    ref, defaults = _ref(name, folder)
    return Job(ref, {**defaults, **params}, strategies)


@needs_valgrind
def test_each_failure_is_its_strategys_line_and_the_others_are_counted(tmp_path):
    (tmp_path / "failing.py").write_text(FAILING)
    jobs = [_job(n, tmp_path) for n in ("broken", "later", "dies", "hangs", "marks")]
    jobs.append(_job("bytes-buffer", strategies=("none", "sync"), size=4096))
    found = count_jobs(jobs, (10, 30), timeout=20)
    lines = [f["none"] for f in found[:5]]
    # 32 + 10 + 30 counted operations call the marker once more each, beside poolbench's 3.
    assert lines == [
        "broken pool=none: RuntimeError: no database here",
        "later pool=none: ValueError: instruction counts take synchronous scenarios",
        "dies pool=none: the counted process died (exit status 3)",
        "hangs pool=none: took over 20 s",
        "marks pool=none: 75 callgrind dumps for 3 markers (getppid() called elsewhere)",
    ]
    counted = found[5]
    assert counted["none"].counts.Ir > counted["sync"].counts.Ir > 0  # type: ignore[union-attr]
    ref, params = _ref("broken", tmp_path)
    with pytest.raises(CountFailed, match="not counted: broken pool=none: RuntimeError: no database here"):
        count_per_op(ref, params, ["none"], ops=(10, 20))


@needs_valgrind
def test_a_counted_process_that_cannot_start_is_one_line_on_every_strategy():
    found = count_jobs([_job("bytes-buffer", strategies=("none", "sync"))], python="/nonexistent/python")
    assert found == [{
        name: f"bytes-buffer pool={name}: the counted process failed: valgrind: /nonexistent/python: "
        "No such file or directory"
        for name in ("none", "sync")
    }]  # fmt: skip


@needs_valgrind
def test_a_count_is_the_same_whatever_was_counted_before_it():
    # Every strategy is counted in a child forked from the same state: a cell's instructions do not
    # depend on the matrix around it (in one process, a cell moved by 1.7% after another). Its
    # simulated misses follow where its objects lie, which can move a little.
    alone = count_jobs([_job("bytes-buffer", strategies=("sync",), size=4096)], (20, 60))
    after = count_jobs([_job("json-struct", strategies=("none",), batch=10),
                        _job("bytes-buffer", strategies=("none", "sync"), size=4096)], (20, 60))  # fmt: skip
    mine, there = alone[0]["sync"].counts, after[1]["sync"].counts  # type: ignore[union-attr]
    assert (mine.Ir, mine.Dr, mine.Dw) == (there.Ir, there.Dr, there.Dw)


THREADED = """
import threading
from poolbench import Scenario


class Handoff(Scenario):
    \"\"\"Each operation handed to a thread and waited for: Valgrind's switches decide the count.\"\"\"

    name = "handoff"

    def setup(self):
        self.go, self.done = threading.Semaphore(0), threading.Semaphore(0)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            self.go.acquire()
            self.done.release()

    def new(self):
        return []

    def use(self, obj):
        self.go.release()
        self.done.acquire()
"""


@needs_valgrind
def test_operations_on_several_threads_are_counted_twice_and_their_spread_reported(tmp_path):
    (tmp_path / "threaded.py").write_text(THREADED)
    (found,) = count_jobs([_job("handoff", tmp_path)], (20, 60))
    counted = found["none"]
    assert counted.repeats == 2  # type: ignore[union-attr]
    assert 0 <= counted.spread < 0.5  # type: ignore[union-attr]
    assert counted.to_json()["repeats"] == 2  # type: ignore[union-attr]
    (single,) = count_jobs([_job("bytes-buffer", size=4096)], (20, 60))
    assert single["none"].repeats == 1 and single["none"].spread == 0  # type: ignore[union-attr]


@needs_valgrind
def test_ctrl_c_while_counting_keeps_what_was_counted_and_leaves_no_process(tmp_path):
    import psutil

    def interrupt(done):
        raise KeyboardInterrupt

    # Two lanes at most: the third strategy waits for the first to end, and is never started.
    jobs = [_job("bytes-buffer", size=4096), _job("bytes-buffer", strategies=("sync",), size=8192),
            _job("bytes-buffer", strategies=("sync",), size=16384)]  # fmt: skip
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(CountInterrupted) as info:
        count_jobs(jobs, (10, 30), on_counted=interrupt)
    found = [f for job in info.value.found for f in job.values()]
    assert any(not isinstance(f, str) and f.counts.Ir > 0 for f in found)  # the one that ended is kept
    assert found[2] == "bytes-buffer pool=sync: interrupted"
    assert {p.pid for p in psutil.Process().children(recursive=True)} == before


@needs_valgrind
def test_run_instructions_fills_a_column_every_export_and_a_gate_on_1_percent(tmp_path):
    import json

    from typer.testing import CliRunner

    from poolbench.cli import app

    out = tmp_path / "i.json"
    run = ["run", "bytes-buffer", "-t", "1", "-P", "none,sync", "-p", "size=4KiB", "--quick", "--instructions",
           "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, run, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "instr/op" in result.output
    doc = json.loads(out.read_text())
    ir = {c["pool"]: c["instructions"]["Ir"] for c in doc["cells"]}
    assert ir["none"] > ir["sync"] > 0  # a fresh 4 KiB bytearray is zeroed; a reused one is not
    csv = CliRunner().invoke(app, ["show", str(out), "--format", "csv"]).output
    assert {"instr_per_op", "instr_spread", "est_cycles_per_op", "ll_miss_per_op"} <= set(
        csv.splitlines()[0].split(",")
    )
    assert "instr/op" in CliRunner().invoke(app, ["show", str(out), "--format", "benchstat"]).output
    same = CliRunner().invoke(app, ["compare", str(out), str(out), "--metric", "instructions,cycles"])
    assert same.exit_code == 0, same.output
    for cell in doc["cells"]:
        if cell["pool"] == "sync":
            cell["instructions"]["Ir"] *= 1.02  # 2% more work an operation
    worse = tmp_path / "worse.json"
    worse.write_text(json.dumps(doc))
    gated = CliRunner().invoke(app, ["compare", str(out), str(worse), "--metric", "instructions"])
    assert gated.exit_code == 1, gated.output
    assert "instructions" in gated.output
    # Counted on another processor (or C library, interpreter build, Valgrind): shown, not gated.
    assert set(doc["metadata"]["instructions_counted_on"]) == {
        "valgrind",
        "python",
        "libc",
        "cpu",
        "cpu_features",
    }
    doc["metadata"]["instructions_counted_on"]["cpu_features"] = "0123456789abcdef"
    worse.write_text(json.dumps(doc))
    elsewhere = CliRunner().invoke(app, ["compare", str(out), str(worse), "--metric", "instructions"],
                                   terminal_width=200)  # fmt: skip
    assert elsewhere.exit_code == 0, elsewhere.output
    assert "instructions counted on different set-ups (cpu_features" in elsewhere.output
    markdown = CliRunner().invoke(app, ["show", str(out), "--format", "markdown"]).output
    assert "| instr/op (vs none) | est. cycles/op | LL miss/op |" in markdown


def test_run_instructions_without_valgrind_is_one_line_exit_2(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from poolbench.cli import app

    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    result = CliRunner().invoke(app, ["run", "bytes-buffer", "-t", "1", "--quick", "--instructions",
                                      "-o", str(tmp_path / "x.json")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "counting instructions needs Valgrind" in result.output
    assert not (tmp_path / "x.json").exists()  # refused before anything was measured


def test_a_difference_below_zero_reads_0_so_every_reader_accepts_the_file(tmp_path):
    from poolbench.instructions import _read, _Served

    events = "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n"
    (tmp_path / "cg.7.2").write_text(events + "summary: 100 0 0 5\n")
    (tmp_path / "cg.7.3").write_text(events + "summary: 300 0 0 4\n")
    (tmp_path / "cg.7.1").write_text(events + "summary: 1\n")
    entry = {
        "job": 0,
        "strategy": "none",
        "repeat": 0,
        "pid": 7,
        "dumps": [2, 3],
        "marks": 3,
        "ops": [10, 20],
    }
    (tmp_path / "00000000-0.json").write_text(json.dumps(entry))
    ((ref, _cls),) = discover(()).lookup(["bytes-buffer"])
    ((found,),) = (f.values() for f in _read([Job(ref, {}, ("none",))], [(0, "none")], tmp_path, _Served(0)))
    assert found.counts.Ir == 20.0 and found.counts.I1mr == 0.0  # 4 - 5 misses over 10 operations


def test_ctrl_c_while_counting_saves_the_counts_made_and_resume_counts_the_rest(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from poolbench.cli import app
    from poolbench.instructions import PerOp

    counts = Counts(1000.0, 1, 0, 300, 2, 0, 200, 1, 0)
    asked: list[list[str]] = []

    def interrupted(jobs, *args, **kwargs):
        asked.append([name for job in jobs for name in job.strategies])
        found = [
            {name: f"{job.ref.name} pool={name}: interrupted" for name in job.strategies} for job in jobs
        ]
        found[0]["none"] = PerOp("none", counts, (50, 150))
        raise CountInterrupted(found)

    def finished(jobs, *args, **kwargs):
        asked.append([name for job in jobs for name in job.strategies])
        return [{name: PerOp(name, counts, (50, 150)) for name in job.strategies} for job in jobs]

    monkeypatch.setattr(instructions, "valgrind", lambda: "/usr/bin/valgrind")
    monkeypatch.setattr(instructions, "counted_on", lambda python: {"valgrind": "valgrind-3.19.0"})
    monkeypatch.setattr(instructions, "count_jobs", interrupted)
    out = tmp_path / "i.json"
    run = ["run", "bytes-buffer", "-t", "1", "-P", "none,sync", "-p", "size=4KiB", "--quick", "--instructions",
           "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, run, terminal_width=200)
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and "--resume" in result.output
    doc = json.loads(out.read_text())
    assert doc["complete"] is False
    assert {c["pool"]: bool(c.get("instructions")) for c in doc["cells"]} == {"none": True, "sync": False}
    assert not any(c["warnings"] for c in doc["cells"])  # an interrupted count is not a failed one
    monkeypatch.setattr(instructions, "count_jobs", finished)
    resumed = CliRunner().invoke(app, ["run", "--resume", str(out)], terminal_width=200)
    assert resumed.exit_code == 0, resumed.output
    assert asked == [["none", "sync"], ["sync"]]  # only what was not counted
    doc = json.loads(out.read_text())
    assert doc["complete"] is True and all(c["instructions"]["Ir"] == 1000.0 for c in doc["cells"])


def test_a_run_says_which_cells_it_could_not_count(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from poolbench.cli import app
    from poolbench.instructions import PerOp

    def finished(jobs, *args, **kwargs):
        assert all(job.ref.name == "bytes-buffer" for job in jobs)  # the 1-thread cells only
        return [{name: PerOp(name, Counts(*[1.0] * 9), (50, 150)) for name in job.strategies} for job in jobs]

    monkeypatch.setattr(instructions, "valgrind", lambda: "/usr/bin/valgrind")
    monkeypatch.setattr(instructions, "counted_on", lambda python: {"valgrind": "valgrind-3.19.0"})
    monkeypatch.setattr(instructions, "count_jobs", finished)
    run = ["run", "bytes-buffer", "async-buffer", "-t", "1,2", "-c", "1", "-P", "none,sync", "-p", "size=4KiB",
           "--quick", "--instructions", "-o", str(tmp_path / "i.json")]  # fmt: skip
    result = CliRunner().invoke(app, run, terminal_width=300)
    assert result.exit_code == 0, result.output
    assert (
        "--instructions: 4 cell(s) not counted, timed only: 2 with more than one thread, 2 of asyncio "
        "scenarios (Valgrind runs one thread at a time; a run under several interpreters is not counted)"
        in " ".join(result.output.split())
    )


def test_at_80_columns_the_counts_are_a_line_under_each_table(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from poolbench.cli import app
    from poolbench.instructions import PerOp

    def finished(jobs, *args, **kwargs):
        made = {"none": Counts(2000.0, *[0.0] * 8), "sync": Counts(1000.0, *[0.0] * 8)}
        return [{name: PerOp(name, made[name], (50, 150)) for name in job.strategies} for job in jobs]

    monkeypatch.setattr(instructions, "valgrind", lambda: "/usr/bin/valgrind")
    monkeypatch.setattr(instructions, "counted_on", lambda metadata: {"valgrind": "valgrind-3.19.0"})
    monkeypatch.setattr(instructions, "count_jobs", finished)
    out = tmp_path / "i.json"
    run = ["run", "bytes-buffer", "-t", "1", "-P", "none,sync", "-p", "size=4KiB", "--quick", "--instructions",
           "-o", str(out)]  # fmt: skip
    assert CliRunner().invoke(app, run, terminal_width=200).exit_code == 0

    def shown(width: int) -> str:
        import io

        from rich.console import Console

        from poolbench import storage
        from poolbench.render.table import print_result
        from poolbench.report import report

        saved, text = storage.load(out), io.StringIO()
        print_result(Console(file=text, width=width), saved, report(saved))
        return text.getvalue()

    narrow = shown(80)
    assert "instr/op: none 2k, sync 1k (-50%)" in narrow  # the column has no room at 80
    assert max(len(line) for line in narrow.splitlines()) <= 80
    wide = shown(200)
    assert "instr/op: none" not in wide and "(-50%)" in wide  # the column has
