"""Exports other tools must accept: pyperf's JSON and Go benchmark text (benchstat)."""

from __future__ import annotations

import re
import subprocess
import sys

from typer.testing import CliRunner

from poolbench.cli import app

from .conftest import DATA

RESULT = str(DATA / "quick-builtins.json")
runner = CliRunner()
GO_LINE = re.compile(
    r"^Benchmark[A-Za-z]+/pool=\w+/threads=\d+(/\w+=[\w.]+)*  \d+  [\d.]+ ns/op  \d+ B/op  [\d.]+ allocs/op$"
)


def test_benchstat_export_is_go_benchmark_text():
    out = runner.invoke(app, ["show", RESULT, "--format", "benchstat"])
    assert out.exit_code == 0
    lines = out.stdout.splitlines()
    assert lines[0].startswith("goos: ")
    bench = [line for line in lines if line.startswith("Benchmark")]
    assert bench and all(GO_LINE.match(line) for line in bench), bench[:3]
    assert any(
        line.startswith("BenchmarkBytesBuffer/pool=sync/threads=1/batch=1/size=65536") for line in bench
    )


def test_pyperf_export_is_read_by_pyperf_itself(tmp_path):
    out = runner.invoke(app, ["show", RESULT, "--format", "pyperf"])
    assert out.exit_code == 0, out.output
    path = tmp_path / "export.json"
    path.write_text(out.stdout)
    for command in (["stats"], ["show"], ["compare_to", str(path)]):
        args = [sys.executable, "-m", "pyperf", *command, str(path)]
        done = subprocess.run(args, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    stats = subprocess.run(
        [sys.executable, "-m", "pyperf", "stats", str(path)], capture_output=True, text=True
    )
    assert "BytesBuffer/pool=sync/threads=1" in stats.stdout
