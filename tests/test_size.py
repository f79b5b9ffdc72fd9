"""poolbench size: a pool at each size in worker processes of its own, the observed pass (waits,
time held, objects in use), the recommendation, and bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poolbench import storage
from poolbench.cli import app
from poolbench.errors import UsageError
from poolbench.sizing import NEAR_BEST, SizeRow, parse_duration, recommend

EXAMPLES = Path(__file__).resolve().parent.parent / "scenarios" / "examples"

NEVER_TAKES = """
from poolbench import Scenario


class Aloof(Scenario):
    name = "aloof"

    def new(self):
        return []

    def use(self, obj):
        pass

    def run(self, n, get, put):
        for _ in range(n):
            [].append(1)  # never asks the pool for anything
"""


def row(size, ops, p99, status="ok"):
    return SizeRow(size, status, None, ops, 0.0, p99, p99, 0, size, size, 1e6, ops, gets=100)


def test_the_smallest_size_near_the_best_throughput_under_the_wait_target_is_recommended():
    rows = [row(1, 500, 30e6), row(2, 1000, 14e6), row(4, 1990, 1e6), row(8, 2000, 1e3), row(16, 2010, 1e3)]
    found = recommend("bounded", rows, 5e6)
    # 4 is within 5% of the best (1,990 of 2,010) and waits 1 ms at p99: the smallest that serves.
    assert found.size == 4
    assert found.reason == "4: 99% of the best throughput, p99 wait 1 ms"
    assert recommend("bounded", rows, 0.5e6).size == 8  # a tighter wait target: the next size up
    assert 1990 >= NEAR_BEST * 2010


def test_no_recommendation_says_by_how_much_the_closest_size_misses_the_wait_target():
    rows = [row(1, 1000, 30e6), row(2, 990, 12e6)]
    found = recommend("bounded", rows, 5e6)
    assert found.size is None
    assert found.reason == "no size meets p99 wait <= 5 ms: the closest, 2, waits 12 ms at p99 (7 ms over)"


def test_a_throughput_still_rising_at_the_largest_size_is_noted():
    rows = [row(1, 500, 1e3), row(2, 1000, 1e3)]
    found = recommend("bounded", rows, 5e6)
    assert found.size == 2 and "try larger sizes" in found.notes[0]


@pytest.mark.parametrize(
    "text, ns", [("5ms", 5e6), ("400us", 4e5), ("0.5s", 5e8), ("2", 2e9), ("250ns", 250.0)]
)
def test_durations_read_with_their_unit(text, ns):
    assert parse_duration(text, "--max-wait") == ns


@pytest.mark.parametrize("text", ["0ms", "-1ms", "soon", "5 parsecs", "nan", "inf"])
def test_bad_durations_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_duration(text, "--max-wait")


def size(*args):
    return CliRunner().invoke(app, ["size", *args])


@pytest.mark.parametrize("scenario,members", [("hold", ["-t", "4"]), ("async-hold", ["-c", "4"])])
def test_a_sweep_measures_waits_below_the_load_and_none_above_it(tmp_path, scenario, members):
    out = tmp_path / "s.json"
    result = size(scenario, "--scenarios-dir", str(EXAMPLES), *members, "--sizes", "1,4,8", "-p", "hold_ms=2",
                  "--quick", "--format", "json", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    sweep = json.loads(result.output)["pools"][0]
    assert sweep["pool"] == "bounded"
    rows = {r["size"]: r for r in sweep["sizes"]}
    assert set(rows) == {1, 4, 8}
    for n, r in rows.items():
        assert set(r) >= {
            "size",
            "ops_per_sec",
            "wait_p50_ns",
            "wait_p99_ns",
            "timeouts",
            "peak_in_use",
            "created",
        }
        # Never more out, nor made, than the pool allows or the 4 members can hold.
        assert r["peak_in_use"] == min(n, 4) and r["created"] == min(n, 4)
        assert r["timeouts"] == 0
    # One object for 4 members: a member waits for the others' 2 ms holds; 4 or more: nobody waits
    # as long as one hold.
    assert rows[1]["wait_p99_ns"] > 2e6
    assert rows[4]["wait_p99_ns"] < 2e6 and rows[8]["wait_p99_ns"] < 2e6
    assert sweep["recommended"] == 4
    saved = storage.load(out)
    assert saved.config["command"] == "size" and saved.complete
    assert {c.params["max_size"] for c in saved.cells} == {1, 4, 8}
    assert all(c.pool == "bounded" and c.runs[0].acquire is not None for c in saved.cells)
    # The other commands read it: show (as size printed it), CSV per cell, compare, plot.
    shown = CliRunner().invoke(app, ["show", str(out), "--format", "json"])
    assert json.loads(shown.output)["pools"][0]["recommended"] == 4
    assert "recommended size 4" in CliRunner().invoke(app, ["show", str(out)], terminal_width=200).output
    assert "max_size=8" in CliRunner().invoke(app, ["show", str(out), "--format", "csv"]).output
    compared = CliRunner().invoke(app, ["compare", str(out), str(out)])
    assert compared.exit_code == 0, compared.output
    plotted = CliRunner().invoke(app, ["plot", str(out), "-o", str(tmp_path / "fig")])
    assert plotted.exit_code == 0, plotted.output
    assert (tmp_path / "fig" / "s-size.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sizes", "0"], "bad pool size 0"),
        (["--sizes", "-2"], "bad pool size -2"),
        (["--sizes", "four"], "--sizes takes whole numbers, not 'four'"),
        (["--pool", "sync"], "pool sync has no size to sweep"),
        (["--pool", "freelist"], "pool freelist has no size to sweep"),
        (["--pool", "none"], "pool none has no size to sweep"),
        (["--pool", "nosuch"], "unknown pool strategy 'nosuch'"),
        (["--max-wait", "later"], "--max-wait later: expected a positive duration"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = size("hold", "--scenarios-dir", str(EXAMPLES), "--quick", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_scenario_that_never_takes_from_the_pool_is_named_exit_2(tmp_path):
    (tmp_path / "aloof.py").write_text(NEVER_TAKES)
    result = size("aloof", "--scenarios-dir", str(tmp_path), "--sizes", "1,2", "-t", "1", "--quick",
                  "-o", str(tmp_path / "a.json"))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "aloof never takes an object from the pool (bounded)" in result.output


def test_an_interrupted_sweep_is_finished_by_run_resume(tmp_path):
    out = tmp_path / "s.json"
    result = size("hold", "--scenarios-dir", str(EXAMPLES), "-t", "2", "--sizes", "1,2", "-p", "hold_ms=1",
                  "--quick", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    doc["complete"] = False  # as an interrupted sweep leaves it: its last size not measured yet
    last = doc["cells"][-1]
    last.update(status="pending", runs=[], latency_ns=[], gc=None, memory=None, pool_stats=None)
    out.write_text(json.dumps(doc))
    resumed = CliRunner().invoke(app, ["run", "--resume", str(out), "--scenarios-dir", str(EXAMPLES)],
                                 terminal_width=200)  # fmt: skip
    assert resumed.exit_code == 0, resumed.output
    assert "recommended size 2" in resumed.output
    saved = storage.load(out)
    assert saved.complete and all(c.status == "ok" and c.runs[0].acquire for c in saved.cells)
