"""Instructions and simulated cache misses per operation under Valgrind: parsed, derived by the
difference of two counted processes, repeatable; missing Valgrind and failing scenarios in one line."""

from __future__ import annotations

import shutil

import pytest

from poolbench import instructions
from poolbench.discovery import discover
from poolbench.instructions import CountFailed, Counts, ValgrindMissing, count_per_op, parse

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
"""


@needs_valgrind
def test_a_scenario_that_fails_or_is_async_is_one_line(tmp_path):
    (tmp_path / "failing.py").write_text(FAILING)
    ref, params = _ref("broken", tmp_path)
    with pytest.raises(
        CountFailed, match="the counted process of broken pool=none failed: RuntimeError: no database here"
    ):
        count_per_op(ref, params, ["none"], ops=(10, 20))
    ref, params = _ref("later", tmp_path)
    with pytest.raises(CountFailed, match="instruction counts take synchronous scenarios"):
        count_per_op(ref, params, ["none"], ops=(10, 20))


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
    assert "instr_per_op" in csv.splitlines()[0]
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


def test_run_instructions_without_valgrind_is_one_line_exit_2(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from poolbench.cli import app

    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    result = CliRunner().invoke(app, ["run", "bytes-buffer", "-t", "1", "--quick", "--instructions",
                                      "-o", str(tmp_path / "x.json")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "counting instructions needs Valgrind" in result.output
    assert not (tmp_path / "x.json").exists()  # refused before anything was measured


def test_a_difference_below_zero_reads_0_so_every_reader_accepts_the_file(monkeypatch):
    totals = iter([Counts(100.0, 5.0, 0, 0, 0, 0, 0, 0, 0), Counts(300.0, 4.0, 0, 0, 0, 0, 0, 0, 0)])
    monkeypatch.setattr(instructions, "count_process", lambda *a, **k: next(totals))
    ((ref, _cls),) = discover(()).lookup(["bytes-buffer"])
    (found,) = count_per_op(ref, {}, ["none"], ops=(10, 20))
    assert found.counts.Ir == 20.0 and found.counts.I1mr == 0.0  # 4 - 5 misses over 10 operations
