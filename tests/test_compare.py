"""The regression gate: statistics on synthetic results, exit codes on real files."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from poolbench import storage
from poolbench.cli import app
from poolbench.compare import Threshold, compare_results, parse_thresholds
from poolbench.errors import ResultFileError, UsageError
from poolbench.result import Cell, GcStats, Result, Run

from .conftest import DATA

RESULT = DATA / "quick-builtins.json"
runner = CliRunner()


def cell(
    pool="none", *, time=100.0, noise=0.02, allocs=10.0, speedup=1.5, seed=0, threads=1, n=10, processes=6
):
    rnd = random.Random(seed)
    runs = []
    for _ in range(processes):
        reference = [50 * (1 + rnd.uniform(-noise, noise)) for _ in range(n)]
        # Machine speed moves values and reference together; the value's own noise is small.
        values = [time * r / 50 * (1 + rnd.uniform(-noise / 4, noise / 4)) for r in reference]
        ratios = [speedup * (1 + rnd.uniform(-noise, noise)) for _ in range(n)] if pool != "none" else []
        runs.append(Run(1000, values, [], ratios, reference, allocs, allocs * 16))
    c = Cell("s", pool, threads, {"batch": 1}, runs=runs)
    c.gc = GcStats(10_000, [20, 2, 0], 0, 0)
    return c


def result(*cells, **metadata):
    return Result({"python_version": "3.11.7", **metadata}, {"mode": "quick"}, list(cells), complete=True)


def regressions(base, cand, **kwargs):
    return [(c.base.pool, m.metric) for c, m in compare_results(base, cand, **kwargs).regressions]


def test_identical_code_is_not_a_regression():
    assert (
        regressions(result(cell(seed=1), cell("sync", seed=2)), result(cell(seed=3), cell("sync", seed=4)))
        == []
    )


def test_thirty_percent_slower_is_a_time_regression():
    found = regressions(result(cell(seed=1)), result(cell(time=130.0, seed=2)))
    assert found == [("none", "time")]


def test_a_machine_that_is_slower_overall_is_not_a_regression():
    base = result(cell(seed=1))
    cand = result(cell(seed=2))
    for run in cand.cells[0].runs:  # everything 40% slower, the reference workload too
        run.values = [v * 1.4 for v in run.values]
        run.reference = [r * 1.4 for r in run.reference]
    assert regressions(base, cand) == []


def test_a_significant_change_below_the_threshold_is_not_a_regression():
    comparison = compare_results(result(cell(seed=1)), result(cell(time=105.0, seed=2)))
    time = comparison.cells[0].changes[0]
    assert time.mark == "slower"
    assert not time.regression


def test_one_extra_allocation_per_op_is_an_allocs_regression():
    found = regressions(result(cell(seed=1)), result(cell(allocs=11.0, seed=1)))
    assert ("none", "allocs") in found


def test_fewer_allocations_are_an_improvement_not_a_regression():
    comparison = compare_results(result(cell(seed=1)), result(cell(allocs=9.0, seed=1)))
    allocs = next(m for m in comparison.cells[0].changes if m.metric == "allocs")
    assert allocs.mark == "fewer" and not allocs.regression


def test_a_pool_that_lost_its_speedup_is_a_speedup_regression():
    found = regressions(result(cell("sync", seed=1)), result(cell("sync", speedup=1.1, seed=2)))
    assert ("sync", "speedup") in found


def test_thresholds_can_be_tightened_and_loosened():
    base, cand = result(cell(seed=1)), result(cell(time=130.0, seed=2))
    assert regressions(base, cand, thresholds=parse_thresholds(["time=50%"])) == []
    assert regressions(
        result(cell(seed=1)), result(cell(allocs=10.3, seed=1)), thresholds=parse_thresholds(["allocs=0"])
    )


@pytest.mark.parametrize("item", ["speed=5%", "time", "time=fast", "allocs=-1", "time=nan"])
def test_bad_thresholds_are_usage_errors(item):
    with pytest.raises(UsageError):
        parse_thresholds([item])


def test_threshold_forms():
    t = parse_thresholds(["time=5%", "allocs=1", "bytes=10%"])
    assert t["time"] == Threshold(0.05, True)
    assert t["allocs"] == Threshold(1.0, False)
    assert t["bytes"] == Threshold(0.10, True)


def test_cells_only_in_one_file_are_listed_not_dropped_when_missing_ones_are_allowed():
    comparison = compare_results(
        result(cell(), cell("sync")), result(cell(), cell("freelist")), allow_missing=True
    )
    assert [c.pool for c in comparison.only_base] == ["sync"]
    assert [c.pool for c in comparison.only_cand] == ["freelist"]
    assert not comparison.failing


def test_a_base_cell_missing_from_the_candidate_fails_the_gate():
    comparison = compare_results(result(cell(), cell("sync")), result(cell()))
    assert [(c.pool, why) for c, why in comparison.broken] == [
        ("sync", "missing from the candidate (--allow-missing if the matrix was narrowed on purpose)")
    ]
    assert comparison.failing


def test_a_cell_that_failed_in_the_candidate_fails_the_gate():
    broken = cell("sync")
    broken.status, broken.error, broken.runs = "failed", "RuntimeError: boom in setup", []
    comparison = compare_results(result(cell(), cell("sync")), result(cell(), broken))
    assert comparison.failing
    assert "RuntimeError: boom in setup" in comparison.broken[0][1]


def test_a_candidate_whose_every_cell_failed_fails_the_gate():
    failed = [cell(), cell("sync")]
    for c in failed:
        c.status, c.error, c.runs = "failed", "RuntimeError: boom", []
    comparison = compare_results(result(cell(), cell("sync")), result(*failed))
    assert comparison.failing and len(comparison.broken) == 2 and not comparison.cells


def test_no_cell_in_common_is_bad_input():
    other = cell()
    other.scenario = "other"
    with pytest.raises(ResultFileError, match="nothing to compare"):
        compare_results(result(cell()), result(other))


def test_different_environments_are_reported():
    comparison = compare_results(result(cell()), result(cell(), python_version="3.12.1"))
    assert ("python_version", "3.11.7", "3.12.1") in comparison.env_differences


def test_too_few_values_never_make_a_regression():
    comparison = compare_results(result(cell(processes=2)), result(cell(time=200.0, processes=2)))
    time = comparison.cells[0].changes[0]
    assert not time.regression and "too few" in time.note


# The command, on real files ---------------------------------------------------------------------


def with_extra_allocation(tmp_path):
    data = json.loads(RESULT.read_text())
    for c in data["cells"]:
        for run in c["runs"]:
            if run.get("allocs_per_op") is not None:
                run["allocs_per_op"] += 1
    path = tmp_path / "cand.json"
    path.write_text(json.dumps(data))
    return path


def test_compare_of_a_file_with_itself_exits_0():
    out = runner.invoke(app, ["compare", str(RESULT), str(RESULT)])
    assert out.exit_code == 0, out.output
    assert "no regression" in out.output
    assert "geomean" in out.output


def test_compare_exits_1_on_a_regression_and_names_it(tmp_path):
    out = runner.invoke(app, ["compare", str(RESULT), str(with_extra_allocation(tmp_path))])
    assert out.exit_code == 1
    assert "REGRESSION" in out.output


def test_compare_markdown_is_a_table_for_a_job_summary(tmp_path):
    out = runner.invoke(
        app, ["compare", str(RESULT), str(with_extra_allocation(tmp_path)), "--format", "markdown"]
    )
    assert out.exit_code == 1
    assert "| cell | metric |" in out.stdout
    assert "**REGRESSION**" in out.stdout


def test_compare_json_counts_regressions(tmp_path):
    out = runner.invoke(
        app, ["compare", str(RESULT), str(with_extra_allocation(tmp_path)), "--format", "json"]
    )
    data = json.loads(out.stdout)
    assert data["regressions"] > 0
    assert all("metrics" in c for c in data["cells"])


def test_a_candidate_with_a_failed_cell_exits_1_and_shows_the_error(tmp_path):
    data = json.loads(RESULT.read_text())
    data["cells"][1].update(status="failed", error="RuntimeError: boom in setup", runs=[], latency_ns=[])
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(data))
    out = runner.invoke(app, ["compare", str(RESULT), str(cand)])
    assert out.exit_code == 1, out.output
    assert "RuntimeError: boom in setup" in out.output and "failed or missing" in out.output


def test_an_interrupted_candidate_exits_1_unless_allowed(tmp_path):
    data = json.loads(RESULT.read_text())
    data["complete"] = False
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(data))
    out = runner.invoke(app, ["compare", str(RESULT), str(cand)])
    assert out.exit_code == 1, out.output
    assert "candidate file is incomplete" in out.output and "--allow-incomplete" in out.output
    out = runner.invoke(app, ["compare", str(RESULT), str(cand), "--allow-incomplete"])
    assert out.exit_code == 0, out.output


def test_a_candidate_that_lacks_cells_exits_1_unless_missing_cells_are_allowed(tmp_path):
    data = json.loads(RESULT.read_text())
    data["cells"] = [c for c in data["cells"] if c["threads"] == 1]  # run with -t 1 against -t 1,2
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(data))
    narrowed = runner.invoke(app, ["compare", str(RESULT), str(cand)])
    assert narrowed.exit_code == 1 and "missing from the candidate" in narrowed.output
    allowed = runner.invoke(app, ["compare", str(RESULT), str(cand), "--allow-missing"])
    assert allowed.exit_code == 0, allowed.output
    assert "only in base" in allowed.output


def test_every_compare_shows_adjusted_p_values_and_the_detectable_change():
    out = runner.invoke(app, ["compare", str(RESULT), str(RESULT), "--format", "json"])
    data = json.loads(out.stdout)
    assert data["tests"] > 0
    time = next(m for c in data["cells"] for m in c["metrics"] if m["metric"] == "time")
    assert time["detectable"] is not None and time["detectable"] > 0


def test_strict_env_turns_an_environment_difference_into_exit_2(tmp_path):
    data = json.loads(RESULT.read_text())
    data["metadata"]["python_version"] = "3.99.0"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    relaxed = runner.invoke(app, ["compare", str(RESULT), str(other)])
    assert relaxed.exit_code == 0 and "different python_version" in relaxed.output
    strict = runner.invoke(app, ["compare", str(RESULT), str(other), "--strict-env"])
    assert strict.exit_code == 2


@pytest.mark.parametrize(
    "args, words",
    [
        (["missing.json", str(RESULT)], "no such file"),
        ([str(RESULT), str(RESULT), "--threshold", "speed=3"], "bad threshold"),
        ([str(RESULT), str(RESULT), "--metric", "latency"], "unknown metric 'latency'"),
    ],
)
def test_compare_bad_input_exits_2(args, words):
    out = runner.invoke(app, ["compare", *args])
    assert out.exit_code == 2
    assert words in out.output


def test_only_deterministic_metrics_can_be_gated(tmp_path):
    out = runner.invoke(app, ["compare", str(RESULT), str(RESULT), "--metric", "allocs,bytes,gc"])
    assert out.exit_code == 0
    assert " time " not in out.output


# Shards -----------------------------------------------------------------------------------------


def test_shards_merge_back_into_the_whole_matrix(scenarios_ok, tmp_path):
    files = []
    for k in (1, 2):
        path = tmp_path / f"shard{k}.json"
        out = runner.invoke(app, ["run", "tiny", "--quick", "-t", "1,2", "--scenarios-dir", str(scenarios_ok),
                                  "--shard", f"{k}/2", "-o", str(path)])  # fmt: skip
        assert out.exit_code == 0, out.output
        files.append(path)
    shard_threads = [{c.threads for c in storage.load(p).cells} for p in files]
    assert shard_threads == [{1}, {2}]
    merged = tmp_path / "merged.json"
    out = runner.invoke(app, ["merge", *map(str, files), "-o", str(merged)])
    assert out.exit_code == 0, out.output
    assert {(c.threads, c.pool) for c in storage.load(merged).cells} == {
        (1, "none"),
        (1, "sync"),
        (2, "none"),
        (2, "sync"),
    }
    again = runner.invoke(app, ["merge", str(files[0]), str(files[0]), "-o", str(tmp_path / "dup.json")])
    assert again.exit_code == 2 and "is in both" in again.output


@pytest.mark.parametrize("shard", ["0/2", "3/2", "a/b", "1"])
def test_bad_shard_is_exit_2(shard):
    out = runner.invoke(app, ["run", "bytes-buffer", "--shard", shard])
    assert out.exit_code == 2
    assert "bad --shard" in out.output


def test_time_and_speedup_of_more_threads_than_cpus_are_shown_not_tested():
    base = result(cell(threads=4, seed=1), cell("sync", threads=4, seed=2), cpu_count=2)
    cand = result(
        cell(threads=4, time=150.0, seed=3), cell("sync", threads=4, speedup=0.7, seed=4), cpu_count=2
    )
    comparison = compare_results(base, cand)
    assert comparison.regressions == [] and comparison.tests == 0
    notes = [m.note for c in comparison.cells for m in c.changes if m.metric in ("time", "speedup")]
    assert notes and all("not tested: 4 threads on 2 CPUs" in n for n in notes)
    # With a CPU to spare, the same change is a regression.
    assert ("none", "time") in regressions(result(*base.cells, cpu_count=8), result(*cand.cells, cpu_count=8))


def test_time_of_a_cell_that_keeps_every_cpu_busy_is_not_tested_but_its_speedup_is():
    base = result(cell(threads=2, seed=1), cell("sync", threads=2, seed=2), cpu_count=2)
    cand = result(
        cell(threads=2, time=150.0, seed=3),
        cell("sync", threads=2, time=150.0, speedup=0.7, seed=4),
        cpu_count=2,
    )
    found = regressions(base, cand)
    assert ("sync", "speedup") in found
    assert not any(metric == "time" for _, metric in found)
    notes = [m.note for c in compare_results(base, cand).cells for m in c.changes if m.metric == "time"]
    assert notes and all("not tested: 2 threads on 2 CPUs" in n for n in notes)


def test_a_large_count_may_drift_a_quarter_percent_but_one_allocation_more_is_caught():
    assert regressions(result(cell(allocs=290.0, seed=1)), result(cell(allocs=290.6, seed=1))) == []
    found = regressions(result(cell(allocs=290.0, seed=1)), result(cell(allocs=291.0, seed=1)))
    assert ("none", "allocs") in found


def test_an_interrupted_candidate_fails_the_gate_unless_allowed():
    base = result(cell(seed=1), cell("sync", seed=2))
    cand = result(cell(seed=3), cell("sync", seed=4))
    cand.complete = False
    comparison = compare_results(base, cand)
    assert comparison.failing and comparison.regressions == []
    assert "incomplete" in comparison.incomplete
    allowed = compare_results(base, cand, allow_incomplete=True)
    assert not allowed.failing and any("incomplete" in w for w in allowed.warnings)


def test_an_empty_candidate_fails_the_gate():
    comparison = compare_results(result(cell(), cell("sync")), result())
    assert comparison.failing and len(comparison.broken) == 2


def _closed_reader(args, **env):
    """Exit code and stderr of ``poolbench ARGS`` whose stdout reader is gone before it writes."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "poolbench", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**__import__("os").environ, **env},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=60), err


def test_a_closed_stdout_keeps_the_gates_answer(tmp_path):
    code, err = _closed_reader(["compare", str(RESULT), str(with_extra_allocation(tmp_path))])
    assert (code, err) == (1, "")  # the regression, not a broken pipe
    code, err = _closed_reader(["compare", str(RESULT), str(RESULT)])
    assert (code, err) == (0, "")
    code, err = _closed_reader(["show", str(RESULT)])
    assert (code, err) == (0, "")


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "PYTHONUTF8": "0"}])
def test_a_stream_that_cannot_encode_gets_ascii(env):
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "poolbench", "show", str(RESULT)],
        capture_output=True,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LC_ALL", "LANG")} | env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.isascii() and b" us " in done.stdout and b"pooling wins" in done.stdout


def test_cells_of_an_async_scenario_are_matched_by_their_concurrency():
    def at(concurrency, time, seed):
        c = cell(time=time, seed=seed)
        c.concurrency = concurrency
        return c

    base = result(at(1, 100.0, 1), at(16, 300.0, 2))
    cand = result(at(1, 100.0, 3), at(16, 300.0, 4))
    comparison = compare_results(base, cand)
    assert [(c.base.concurrency, c.cand.concurrency) for c in comparison.cells] == [(1, 1), (16, 16)]
    assert comparison.regressions == []
