"""Hostile and unlucky inputs: a result file never chooses what runs, every error is one line with
the documented exit code, and --timeout is a bound."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from poolbench import storage
from poolbench.cli import app
from poolbench.discovery import discover
from poolbench.spawn import OUTPUT_CAP, _tail

from .conftest import DATA, HERE

runner = CliRunner()
RESULT = DATA / "quick-builtins.json"
HOSTILE = HERE / "scenarios_hostile"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_clear_line(result, code=2):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert "error:" in result.output


# A result file never chooses what runs ------------------------------------------------------------


def test_resume_never_runs_an_interpreter_or_imports_a_folder_named_in_the_file(tmp_path, scenarios_ok):
    marker = tmp_path / "ran"
    evil_python = tmp_path / "python"
    evil_python.write_text(f"#!/bin/sh\ntouch {marker}\n")
    evil_python.chmod(0o755)
    evil_dir = tmp_path / "evil"
    evil_dir.mkdir()
    (evil_dir / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    out = tmp_path / "r.json"
    first = invoke("run", "tiny", "--quick", "-t", "1,2", "--scenarios-dir", scenarios_ok, "-o", out)
    assert first.exit_code == 0, first.output
    data = json.loads(out.read_text())
    data["complete"] = False
    data["cells"] = data["cells"][:2]
    data["config"]["python"] = str(evil_python)
    data["config"]["scenario_dirs"] = [str(evil_dir)]
    data["config"]["scenarios"][0]["location"] = "evil"
    out.write_text(json.dumps(data))

    refused = invoke("run", "--resume", out, "--scenarios-dir", scenarios_ok)
    one_clear_line(refused)
    assert "never chooses what code runs" in refused.output
    assert not marker.exists()


def test_resume_with_the_same_folders_on_the_command_line_finishes_the_run(tmp_path, scenarios_ok):
    out = tmp_path / "r.json"
    assert (
        invoke("run", "tiny", "--quick", "-t", "1,2", "--scenarios-dir", scenarios_ok, "-o", out).exit_code
        == 0
    )
    data = json.loads(out.read_text())
    data["complete"] = False
    data["cells"] = data["cells"][:2]
    out.write_text(json.dumps(data))
    done = invoke("run", "--resume", out, "--scenarios-dir", scenarios_ok)
    assert done.exit_code == 0, done.output
    assert "mode quick" in done.output  # the file's mode, not the command line's default
    assert len(storage.load(out).cells) == 4


# --timeout is a bound -----------------------------------------------------------------------------


def test_a_timeout_holds_when_the_scenario_started_a_detached_child(scenarios_ok, tmp_path):
    started = time.monotonic()
    result = invoke("run", "detached", "--quick", "-t", "1", "--timeout", "3",
                    "--scenarios-dir", scenarios_ok, "-o", tmp_path / "r.json")  # fmt: skip
    assert time.monotonic() - started < 10
    assert result.exit_code == 1 and "timed out after 3 s" in result.output


def test_a_finished_worker_counts_even_if_it_left_a_thread_and_a_child(scenarios_ok, tmp_path):
    started = time.monotonic()
    result = invoke("run", "leaves-thread", "--quick", "-t", "1", "--timeout", "20",
                    "--scenarios-dir", scenarios_ok, "-o", tmp_path / "r.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 60


def _workers_of(parent):
    return [p for p in psutil.process_iter(["cmdline", "ppid"]) if "poolbench.worker" in (p.info["cmdline"] or [])
            and p.info["ppid"] == parent]  # fmt: skip


def test_workers_die_with_their_parent(scenarios_ok, tmp_path):
    cmd = [sys.executable, "-m", "poolbench", "run", "hangs", "--quick", "-t", "1", "--timeout", "60",
           "--scenarios-dir", str(scenarios_ok), "-o", str(tmp_path / "r.json")]  # fmt: skip
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    workers = []
    while time.monotonic() < deadline and not workers:
        workers = _workers_of(parent.pid)
        time.sleep(0.1)
    assert workers
    parent.kill()
    parent.wait()
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == []


def test_the_parent_reads_only_the_tail_of_a_chatty_worker(tmp_path):
    path = tmp_path / "stderr.txt"
    path.write_bytes(b"x" * (10 * OUTPUT_CAP) + b"the end")
    tail = _tail(path)
    assert len(tail) == OUTPUT_CAP and tail.endswith("the end")


def test_doctor_isolates_a_scenario_that_hangs_or_crashes(scenarios_ok):
    result = invoke("doctor", "hangs", "segfaults", "tiny", "--scenarios-dir", scenarios_ok, "--timeout", "3",
                    "--format", "json")  # fmt: skip
    data = json.loads(result.stdout)
    errors = {f["scenario"]: f["detail"] for f in data["findings"] if f["kind"] == "error"}
    assert "timed out after 3 s" in errors["hangs"]
    assert "SIGSEGV" in errors["segfaults"]
    assert "tiny" not in errors
    assert result.exit_code == 1


# Scenario files that misbehave at import ------------------------------------------------------------


def test_discovery_survives_exit_interrupt_flood_and_syntax_errors_at_import(capsys):
    found = discover([HOSTILE])
    problems = {Path(p.source).name: p.error for p in found.problems}
    assert "sys.exit(0)" in problems["exits.py"]
    assert "KeyboardInterrupt" in problems["interrupts.py"]
    assert "(line 3)" in problems["syntax.py"] and "SyntaxError" in problems["syntax.py"]
    assert "still-fine" in found.scenarios
    out = capsys.readouterr()
    assert len(out.out) < 10_000 and len(out.err) < 10_000  # the flood never reached our output


def test_list_with_hostile_files_names_each_and_exits_0():
    result = invoke("list", "--scenarios-dir", HOSTILE)
    assert result.exit_code == 0, result.output
    for name in ("exits.py", "interrupts.py", "syntax.py"):
        assert name in result.output


def test_doctor_json_stays_json_when_a_file_floods_stdout_at_import():
    result = invoke("doctor", "still-fine", "--scenarios-dir", HOSTILE, "--format", "json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)


def test_run_with_a_file_that_exits_at_import_still_writes_its_result(tmp_path):
    out = tmp_path / "out.json"
    result = invoke("run", "still-fine", "--quick", "-t", "1", "--scenarios-dir", HOSTILE, "-o", out)
    assert result.exit_code == 0, result.output
    assert storage.load(out).complete


def test_a_scenarios_dir_that_is_a_file_says_so(tmp_path):
    f = tmp_path / "f.py"
    f.write_text("")
    result = invoke("list", "--scenarios-dir", f)
    one_clear_line(result)
    assert "is a file, not a folder" in result.output


# Every error is one line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["show", "[/].json"],
        ["run", "[/]", "-o", "x.json"],
        ["run", "tiny", "--pool", "[/]", "-o", "x.json"],
        ["run", "tiny", "--timeout", "nan"],
        ["run", "tiny", "--timeout", "inf"],
        ["run", "bytes-buffer", "-p", "size=1" + "0" * 400],
        ["run", "bytes-buffer", "--memory-limit", "1" + "0" * 400],
        ["run", "still-fine", "--scenarios-dir", str(HOSTILE), "-p", "ratio=nan"],
        ["compare", str(RESULT), "[bold]x[/].json"],
    ],
)
def test_hostile_arguments_are_one_line_and_exit_2(args):
    one_clear_line(invoke(*args))


def test_markup_in_metadata_is_shown_as_text(tmp_path):
    data = json.loads(RESULT.read_text())
    data["metadata"]["cpu_model"] = "[/]"
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    result = invoke("show", path)
    assert result.exit_code == 0, result.output
    assert "[/]" in result.output


def test_figures_into_an_existing_file_are_refused(tmp_path):
    target = tmp_path / "taken"
    target.write_text("")
    one_clear_line(invoke("plot", RESULT, "-o", target))
    one_clear_line(invoke("compare", RESULT, RESULT, "--plot", target))


def test_an_internal_error_is_exit_3_never_1(monkeypatch):
    import poolbench.cli.show as show

    def broken(path):
        raise RuntimeError("a bug")

    monkeypatch.setattr(show.storage, "load", broken)
    result = invoke("show", RESULT)
    assert result.exit_code == 3
    assert "internal error: RuntimeError: a bug" in result.output and "report" in result.output


def _edited(tmp_path, edit):
    data = json.loads(RESULT.read_text())
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: d["cells"][0]["runs"][0]["values"].__setitem__(0, 1e308), "implausibly large"),
        (lambda d: d["cells"][0]["runs"][0]["values"].__setitem__(0, 1e-320), "implausibly small"),
        (lambda d: d["cells"][0]["runs"][0]["values"].__setitem__(0, -5.0), "must not be negative"),
        (lambda d: d["cells"][0]["runs"][0].__setitem__("loops", -1), "must not be negative"),
        (lambda d: d["cells"][0]["gc"].__setitem__("collections", []), "three whole numbers"),
        (lambda d: d["cells"][1]["pool_stats"].__setitem__("waits", "lots"), "expected a number"),
        (lambda d: d["cells"][0].__setitem__("runs", []), "has no values"),
        (lambda d: d["cells"].append(d["cells"][0]), "the same cell as cells[0]"),
    ],
)
def test_implausible_result_files_are_refused_with_the_place(tmp_path, edit, words):
    path = _edited(tmp_path, edit)
    for command in (["show", path], ["show", path, "--format", "pyperf"], ["compare", RESULT, path]):
        result = invoke(*command)
        one_clear_line(result)
        assert words in result.output and "cells[" in result.output


# One writer per file, never a non-regular file ---------------------------------------------------------


def test_a_second_run_writing_the_same_file_is_refused(scenarios_ok, tmp_path):
    out = tmp_path / "r.json"
    with storage.exclusive(out):
        result = invoke(
            "run", "tiny", "--quick", "-t", "1", "--scenarios-dir", scenarios_ok, "-o", out, "--force"
        )
    one_clear_line(result)
    assert "another poolbench command is writing" in result.output


def test_merge_into_a_file_a_run_is_writing_is_refused(tmp_path):
    out = tmp_path / "live.json"
    with storage.exclusive(out):
        result = invoke("merge", str(DATA / "quick-builtins.json"), "-o", out, "--force")
    one_clear_line(result)
    assert "another poolbench command is writing" in result.output and not out.exists()


def test_two_files_of_one_name_are_never_drawn_over_each_other(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(DATA / "quick-builtins.json", tmp_path / folder / "base.json")
    result = invoke(
        "plot", tmp_path / "a" / "base.json", tmp_path / "b" / "base.json", "-o", tmp_path / "figs"
    )
    one_clear_line(result)
    assert "would draw into the same figures" in result.output and not (tmp_path / "figs").exists()


def test_figures_of_an_interrupted_run_say_so(tmp_path):
    from poolbench.render.plots import INCOMPLETE

    result = storage.load(DATA / "quick-builtins.json")
    result.complete = False
    drawn = []
    import matplotlib.figure

    original = matplotlib.figure.Figure.savefig

    def keep(fig, *args, **kwargs):
        drawn.append([t.get_text() for t in fig.texts])
        return original(fig, *args, **kwargs)

    from unittest import mock

    from poolbench.render.plots import plot_result

    with mock.patch.object(matplotlib.figure.Figure, "savefig", keep):
        plot_result(result, tmp_path, "r", ["png"])
    assert drawn and all(INCOMPLETE in texts for texts in drawn)


def test_a_device_or_fifo_is_never_replaced(scenarios_ok, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = invoke(
        "run", "tiny", "--quick", "-t", "1", "--scenarios-dir", scenarios_ok, "-o", fifo, "--force"
    )
    one_clear_line(result)
    assert "not a regular file" in result.output
    assert fifo.is_fifo()


# Fuzzed names ---------------------------------------------------------------------------------------------

HOSTILE_TEXT = st.text(
    alphabet=st.sampled_from("[]/\\bold red]x\u202e\x00 ,=:;%'\""), min_size=1, max_size=30
)


@settings(max_examples=40, deadline=None)
@given(name=HOSTILE_TEXT)
def test_fuzzed_scenario_pool_and_file_names_are_exit_2_and_never_a_traceback(name):
    for args in (["run", name, "-o", "x.json"], ["run", "bytes-buffer", "--pool", name, "-o", "x.json"],
                 ["show", name], ["compare", name, name]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)  # an uncaught exception is exit 1
        assert "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if line.lower().startswith("error:")]
        assert len(errors) == 1, result.output  # one clear line


def test_temporary_folders_left_by_a_killed_poolbench_are_removed_on_the_next_run(scenarios_ok, tmp_path):
    import tempfile

    import poolbench.spawn as runner_module

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp = Path(tempfile.gettempdir())
    stale = [tmp / f"poolbench-{kind}-{dead.pid}-abc" for kind in ("worker", "count", "profile", "db")]
    for folder in stale:
        folder.mkdir()
        (folder / "allocations.bin").write_text("{}")
    alive = tmp / f"poolbench-count-{os.getppid()}-abc"  # a process that still runs: kept
    alive.mkdir()
    runner_module._cleaned = False
    result = invoke(
        "run", "tiny", "--quick", "-t", "1", "--scenarios-dir", scenarios_ok, "-o", tmp_path / "r.json"
    )
    assert result.exit_code == 0, result.output
    assert not any(folder.exists() for folder in stale)
    assert alive.exists()
    alive.rmdir()


@pytest.mark.parametrize(
    "args",
    [
        ["run", "tiny", "--quick", "-t", "1", "-o", "notes.txt/r.json"],
        ["merge", RESULT, "-o", "notes.txt/deep/m.json"],
        ["plot", RESULT, "-o", "notes.txt/figs"],
    ],
)
def test_a_file_where_a_folder_should_be_is_named(scenarios_ok, tmp_path, args):
    (tmp_path / "notes.txt").write_text("mine")
    result = invoke(*args, *(["--scenarios-dir", scenarios_ok] if args[0] == "run" else []))
    one_clear_line(result)
    assert "notes.txt is a file, not a folder" in result.output and "File exists" not in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"


# Anything run saves, every reader reads -----------------------------------------------------------

PARAMS_SCENARIO = """
from poolbench import Scenario


class Tagged(Scenario):
    name = "tagged"
    params = {"size": 8, "tag": "x", "ratio": 0.5, "flag": False}

    def new(self):
        return [0] * self.params["size"]

    def use(self, obj):
        obj[0] = len(self.params["tag"])
"""

INT_TEXT = st.sampled_from(["8", " 8", "8 ", "0x8", "1KiB", "1024", "1k", "16", "-1", "", " ", "8.5", "１６"])
STR_TEXT = st.text(alphabet=st.sampled_from("ab [/]\\\u00e9\u202e\u4e2d\U0001f600\x00\t:;%'\"="), max_size=8)
FLOAT_TEXT = st.sampled_from(["0.5", "0.50", ".5", "1e-3", "nan", "inf", "2", ""])
BOOL_TEXT = st.sampled_from(["true", "True", "1", "yes", "false", "0", "no", "maybe", ""])
ASSIGNMENT = st.one_of(
    st.lists(INT_TEXT, min_size=1, max_size=4).map(lambda v: "size=" + ",".join(v)),
    st.lists(STR_TEXT, min_size=1, max_size=4).map(lambda v: "tag=" + ",".join(v)),
    st.lists(FLOAT_TEXT, min_size=1, max_size=3).map(lambda v: "ratio=" + ",".join(v)),
    st.lists(BOOL_TEXT, min_size=1, max_size=3).map(lambda v: "flag=" + ",".join(v)),
)


@settings(max_examples=25, deadline=None)
@given(assignments=st.lists(ASSIGNMENT, min_size=1, max_size=3))
def test_anything_run_saves_every_reader_reads(assignments):
    """-p values with duplicates (``16`` and ``0x10``), empties, unicode and markup: either one line
    of bad input (exit 2), or a saved file that show, compare, merge and plot all read."""
    import tempfile

    from poolbench.errors import UsageError
    from poolbench.session import RunRequest, run_session

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "scenarios").mkdir()
        (folder / "scenarios" / "tagged.py").write_text(PARAMS_SCENARIO)
        out = folder / "r.json"
        request = RunRequest(scenarios=["tagged"], pools=["none", "sync"], threads=[1],
                             params=assignments, mode="smoke", out=out,
                             scenario_dirs=[folder / "scenarios"])  # fmt: skip
        try:
            run_session(request)
        except UsageError as exc:
            assert not out.exists()
            cli = invoke("run", "tagged", "--scenarios-dir", folder / "scenarios", "-o", out,
                         *[a for item in assignments for a in ("-p", item)])  # fmt: skip
            one_clear_line(cli)
            assert exc.message in cli.output.replace("\n", "")
            return
        saved = storage.load(out)
        assert saved.complete and saved.cells
        assert all(c.status == "ok" for c in saved.cells), [c.error for c in saved.cells]
        for args in (["show", out], ["show", out, "--format", "csv"], ["show", out, "--format", "markdown"],
                     ["compare", out, out], ["merge", out, "-o", folder / "m.json"],
                     ["plot", out, "-o", folder / "figs"]):  # fmt: skip
            result = invoke(*args)
            assert result.exit_code == 0, (args, result.output)
        figures = list((folder / "figs").iterdir())
        assert figures and all(f.parent == folder / "figs" for f in figures)
