"""One run under several interpreters (``--python`` repeated), and compare across interpreters.

The second interpreter here is this one behind a wrapper script (CI's 3.11 job has no other); the
free-threaded build itself is run this way by ``.ci/run`` when it has one.
"""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from poolbench import env, storage
from poolbench.cli import app
from poolbench.compare import compare_results
from poolbench.errors import UsageError
from poolbench.render.export import to_csv, to_markdown
from poolbench.report import report
from poolbench.result import Result
from poolbench.session import run_session

from .test_compare import cell, result
from .test_runner import request

runner = CliRunner()
HERE = env.label(env.interpreter())
OTHER = f"{HERE}-2"


@pytest.fixture
def second_python(tmp_path):
    wrapper = tmp_path / "other-python"
    # It notes each start and its arguments, so a test can tell that its cells' workers really ran
    # under it.
    wrapper.write_text(
        f'#!/bin/sh\necho "$*" >> "{tmp_path}/other-python.calls"\nexec "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def test_labels_name_the_build_and_tell_two_venvs_of_one_version_apart():
    gil = {"python_version": "3.11.7", "gil_enabled": True}
    free = {"python_version": "3.13.5", "gil_enabled": False}
    assert env.labels([gil, free]) == ["3.11", "3.13t"]
    assert env.labels([gil, gil, gil]) == ["3.11", "3.11-2", "3.11-3"]


@pytest.fixture
def two_interpreter_run(scenarios_ok, tmp_path, second_python):
    outcome = run_session(
        request(scenarios_ok, tmp_path, "tiny", pools=("sync",), python=(sys.executable, second_python))
    )
    return outcome.result


def test_a_run_under_two_interpreters_has_each_cell_under_each(two_interpreter_run, tmp_path, second_python):
    saved = storage.load(tmp_path / "out.json")
    assert saved.complete
    assert [(c.python, c.pool) for c in saved.cells] == [
        (HERE, "none"), (HERE, "sync"), (OTHER, "none"), (OTHER, "sync"),
    ]  # fmt: skip
    assert all(c.status == "ok" and c.runs for c in saved.cells)
    assert saved.config["python"] == [sys.executable, second_python]
    assert list(saved.metadata["interpreters"]) == [HERE, OTHER]
    assert saved.pythons == [HERE, OTHER]
    # One start to check it, then its workers: forked from a template of its own in each round
    # its cells ran in, and for the counting processes.
    calls = (tmp_path / "other-python.calls").read_text().splitlines()
    assert calls[0].startswith("-P -c")
    assert calls[1:] and all(c.startswith("-P -m poolbench.worker") for c in calls[1:])
    with_template = [c for c in calls[1:] if c.endswith("--template")]
    assert len(with_template) == 2  # the timed round (smoke: one process a pair) and the counting


def test_exports_carry_the_interpreter(two_interpreter_run, tmp_path):
    saved = two_interpreter_run
    rows = to_csv(report(saved)).splitlines()
    assert rows[0].split(",")[4] == "python"
    assert [r.split(",")[4] for r in rows[1:]] == [HERE, HERE, OTHER, OTHER]
    markdown = to_markdown(saved, report(saved))
    assert "| python |" in markdown and f"| {OTHER} |" in markdown
    shown = runner.invoke(app, ["show", str(tmp_path / "out.json"), "--format", "json"])
    assert [c["python"] for c in json.loads(shown.stdout)["cells"]] == [HERE, HERE, OTHER, OTHER]


def test_the_table_has_a_row_group_per_interpreter(two_interpreter_run, tmp_path):
    shown = runner.invoke(app, ["show", str(tmp_path / "out.json")], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.count(env.interpreter()["python_version"]) >= 2
    rows = [line.split("│") for line in shown.stdout.splitlines() if line.startswith("│")]
    rows = [r for r in rows if r[3].strip()]  # a verdict's words may wrap onto a line of their own
    assert [(r[1].strip(), r[3].strip()) for r in rows] == [
        (HERE, "none"), ("", "sync"), (OTHER, "none"), ("", "sync"),
    ]  # fmt: skip


def test_the_cli_takes_python_more_than_once(scenarios_ok, tmp_path, second_python):
    out = tmp_path / "both.json"
    done = runner.invoke(
        app,
        ["run", "tiny", "--scenarios-dir", str(scenarios_ok), "-t", "1", "--pool", "sync", "-o", str(out),
         "--quick", "--python", sys.executable, "--python", second_python],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert storage.load(out).pythons == [HERE, OTHER]


def test_a_single_file_compares_with_itself_cell_by_cell_per_interpreter(two_interpreter_run):
    comparison = compare_results(two_interpreter_run, two_interpreter_run)
    assert len(comparison.cells) == 4
    assert not comparison.failing


def test_the_same_interpreter_twice_is_a_usage_error(scenarios_ok, tmp_path):
    with pytest.raises(UsageError, match="given twice"):
        run_session(request(scenarios_ok, tmp_path, "tiny", python=(sys.executable, sys.executable)))
    assert not (tmp_path / "out.json").exists()


def test_resume_must_name_the_same_interpreters(two_interpreter_run, scenarios_ok, tmp_path, second_python):
    path = tmp_path / "out.json"
    data = json.loads(path.read_text())
    data["complete"] = False
    data["cells"][-1]["runs"] = []
    data["cells"][-1]["status"] = "pending"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="was made with --python"):
        run_session(request(scenarios_ok, tmp_path, "tiny", resume=path, python=(sys.executable,)))
    resumed = run_session(
        request(scenarios_ok, tmp_path, "tiny", resume=path, python=(sys.executable, second_python))
    ).result
    assert resumed.complete
    assert [(c.python, c.status) for c in resumed.cells][-1] == (OTHER, "ok")


def test_a_gil_file_against_a_free_threaded_file_is_compared_cell_by_cell_in_ns():
    gil = result(cell(seed=1), cell("sync", seed=2), gil_enabled=True)
    # The free-threaded build: 30% slower per op, and its reference workload slower alike, so a
    # normalized compare would see nothing; allocations are not counted there.
    free = result(cell(time=130.0, seed=3), cell("sync", time=130.0, seed=4), python_version="3.13.5",
                  gil_enabled=False)  # fmt: skip
    for c in free.cells:
        for run in c.runs:
            run.reference = [r * 1.3 for r in run.reference]
            run.allocs_per_op = run.bytes_per_op = None
    comparison = compare_results(gil, free)
    assert [c.base.pool for c in comparison.cells] == ["none", "sync"]
    assert any("different interpreters (3.11 -> 3.13t)" in w for w in comparison.warnings)
    time = next(m for m in comparison.cells[0].changes if m.metric == "time")
    assert time.mark == "slower" and time.ratio == pytest.approx(1.3, rel=0.05)
    allocs = next(m for m in comparison.cells[0].changes if m.metric == "allocs")
    assert allocs.base == 10.0 and allocs.cand is None and "not counted in the candidate" in allocs.note


def test_a_two_interpreter_file_against_a_one_interpreter_file_matches_that_interpreter(two_interpreter_run):
    one = Result(dict(two_interpreter_run.metadata), dict(two_interpreter_run.config),
                 [c for c in two_interpreter_run.cells if c.python == HERE], complete=True)  # fmt: skip
    for c in one.cells:
        c.python = ""  # as a single-interpreter run writes them
    one.metadata.pop("interpreters")
    comparison = compare_results(one, two_interpreter_run, allow_missing=True)
    assert [c.base.pool for c in comparison.cells] == ["none", "sync"]
    assert [c.python for c in comparison.only_cand] == [OTHER, OTHER]


@pytest.mark.parametrize("program", ["/bin/true", "/bin/echo"])
def test_a_python_that_is_not_python_is_bad_input(program):
    from poolbench.env import check_python

    with pytest.raises(UsageError, match="is not a Python interpreter with poolbench"):
        check_python(program)
