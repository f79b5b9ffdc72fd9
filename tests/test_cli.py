"""The commands as a user meets them: exit codes and the words on screen."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poolbench.cli import app
from poolbench.render.export import CSV_COLUMNS
from poolbench.verdict import VERDICTS

from .conftest import DATA

runner = CliRunner()
RESULT = str(DATA / "quick-builtins.json")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_run_prints_a_table_with_a_verdict_and_saves_the_file(scenarios_ok, tmp_path):
    out = tmp_path / "r.json"
    result = invoke("run", "tiny", "--quick", "-t", "1", "--scenarios-dir", scenarios_ok, "-o", out)
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output
    assert "speedup" in result.output
    assert f"saved {out}" in result.output.replace("\n", "")
    assert json.loads(out.read_text())["complete"] is True


def test_run_with_a_failing_scenario_exits_1_and_keeps_the_rest(scenarios_ok, tmp_path):
    out = tmp_path / "r.json"
    result = invoke("run", "raises", "tiny", "--quick", "-t", "1", "--scenarios-dir", scenarios_ok, "-o", out)
    assert result.exit_code == 1
    assert "scenario bug on purpose" in result.output
    assert "2 cell(s) failed" in result.output
    saved = json.loads(out.read_text())
    assert {c["status"] for c in saved["cells"] if c["scenario"] == "tiny"} == {"ok"}


def test_a_scenario_file_dropped_into_scenarios_runs_with_no_other_change(scenarios_ok, tmp_path):
    (tmp_path / "scenarios").mkdir()
    shutil.copy(scenarios_ok / "tiny.py", tmp_path / "scenarios" / "tiny.py")
    result = invoke("run", "tiny", "--quick", "-t", "1", "-o", tmp_path / "r.json")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "nope"], "unknown scenario 'nope'"),
        (["run", "bytes-buffer", "--pool", "turbo"], "unknown pool strategy 'turbo'"),
        (["run", "bytes-buffer", "-p", "size=lots"], "size=lots"),
        (["run", "bytes-buffer", "-p", "colour=red"], "no selected scenario has a parameter 'colour'"),
        (["run", "json-struct", "-p", "batch=-1"], "batch"),
        (["run", "bytes-buffer", "--threads", "two"], "--threads takes whole numbers, not 'two'"),
        (["run", "bytes-buffer", "--threads", "0"], "bad thread count 0"),
        (["run", "bytes-buffer", "--scenarios-dir", "missing-dir"], "does not exist"),
        (["run", "bytes-buffer", "--quick", "--rigorous"], "exclude each other"),
        (["run", "bytes-buffer", "--timeout", "0"], "--timeout must be a positive number"),
        (["show", "missing.json"], "no such file"),
        (["run", "--resume", "missing.json"], "no such file"),
        (["run", "tiny", "--resume", "x.json"], "--resume takes the matrix"),
        (["run", "bytes-buffer", "--memory-limit", "10"], "below 64MiB"),
        (["run", "bytes-buffer", "--memory-limit", "lots"], "--memory-limit lots"),
        (["show", RESULT, "--format", "yaml"], "yaml"),
    ],
)
def test_bad_input_is_one_clear_message_and_exit_2(args, words):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_run_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "r.json"
    out.write_text("{}")
    result = invoke("run", "bytes-buffer", "-o", out)
    assert result.exit_code == 2
    assert "exists" in result.output and "--force" in result.output


def test_show_renders_the_table():
    result = invoke("show", RESULT)
    assert result.exit_code == 0, result.output
    for words in ("bytes-buffer", "json-struct", "worker-tasks", "time/op", "allocs/op"):
        assert words in result.output


def test_show_csv_has_the_documented_columns_and_one_row_per_cell():
    result = invoke("show", RESULT, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(json.loads(open(RESULT).read())["cells"])
    none_rows = [r for r in rows if r["pool"] == "none"]
    assert all(r["speedup"] == "" and r["verdict"] == "" for r in none_rows)
    assert {r["verdict"] for r in rows if r["pool"] != "none"} <= set(VERDICTS)
    assert all("=" in r["params"] for r in rows)


def test_show_markdown_is_a_table():
    result = invoke("show", RESULT, "--format", "markdown")
    lines = result.stdout.splitlines()
    assert any(line.startswith("| scenario |") for line in lines)
    assert sum(line.startswith("| bytes-buffer") for line in lines) >= 2


def test_show_json_summarizes_each_cell():
    result = invoke("show", RESULT, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["cells"]) == 16
    assert all(c["ns_per_op"] > 0 for c in data["cells"])
    assert {c["verdict"] for c in data["cells"] if c["pool"] == "sync"} <= set(VERDICTS)


def test_show_a_corrupt_file_exits_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "poolbench-result", "version": 1, "cells": [')
    result = invoke("show", bad)
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


def test_list_shows_builtins_folder_scenarios_and_pools(scenarios_broken):
    result = invoke("list", "--scenarios-dir", scenarios_broken)
    assert result.exit_code == 0
    for words in ("bytes-buffer", "size=64KiB", "fine", "sync", "freelist", "bounded", "locked", "queue"):
        assert words in result.output
    assert "broken.py did not load" in result.output.replace("\n", "")


def test_version_prints_the_version():
    from poolbench import __version__

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"poolbench {__version__}"


def test_an_80_column_terminal_gets_the_columns_a_verdict_rests_on_and_a_note():
    from rich.console import Console

    from poolbench import storage
    from poolbench.render.table import print_result
    from poolbench.report import report

    saved = storage.load(Path(RESULT))

    def shown(width):
        out = io.StringIO()
        print_result(Console(file=out, width=width), saved, report(saved))
        return out.getvalue()

    narrow = shown(80)
    lines = narrow.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any("thr" in line and "pool" in line and "time/op" in line for line in lines)
    assert "pooling wins" in narrow and "some columns left out" in narrow
    wide = shown(250)
    assert "peak RSS" in wide and "some columns left out" not in wide


def test_show_at_columns_80_keeps_threads_pool_and_verdict_on_every_row():
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "poolbench", "show", RESULT],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if line.startswith("│") and ("none" in line or "sync" in line)]
    assert rows
    for row in rows:
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert cells[0].isdigit() and cells[1] in ("none", "sync")  # threads and pool, readable
        if cells[1] == "sync":
            assert cells[-1].startswith(("pooling", "no difference", "inconclusive", "unstable")), row


def test_show_piped_at_an_80_column_terminal_fits_that_terminal():
    """``poolbench show F | less`` at a terminal: stdout is a pipe, stderr the terminal, whose
    width the table takes (it was 200 columns, folded by the terminal into unreadable rows)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    try:
        done = subprocess.run([sys.executable, "-m", "poolbench", "show", RESULT],
                              stdout=subprocess.PIPE, stderr=follower, text=True, env=env)  # fmt: skip
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("│") and "sync" in line and "pooling wins" in line for line in lines)


def test_a_plain_install_carries_every_package():
    """``pip install .`` installs the packages pyproject.toml lists: a package missing there works
    in the editable checkout and fails on every plain install (``No module named ...``)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "poolbench").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
