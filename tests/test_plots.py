"""Figures from fixed result files: the right series and bars, and clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from poolbench import storage
from poolbench.cli import app
from poolbench.render import plots
from poolbench.report import report
from poolbench.result import Cell, Result, Run

from .conftest import DATA

runner = CliRunner()
BUILTINS = storage.load(DATA / "quick-builtins.json")
SWEEP = storage.load(DATA / "sweep-bytes.json")


def figure(name, result):
    return plots.FIGURES[name](result, report(result))


def rgb(colour):
    from matplotlib.colors import to_rgb

    return to_rgb(colour)


def test_throughput_has_one_panel_per_scenario_and_one_line_per_pool():
    fig = figure("throughput", BUILTINS)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len({c.scenario for c in BUILTINS.cells}) == 4
    for ax in panels:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["none", "sync"]
        assert "threads" in ax.get_xlabel() and "operations / s" in ax.get_ylabel()
    assert "Python 3.11" in fig._suptitle.get_text()


def test_throughput_of_a_run_under_two_interpreters_has_a_line_per_pool_and_interpreter():
    import copy

    gil = [c for c in BUILTINS.cells if c.scenario == "bytes-buffer"]
    free = copy.deepcopy(gil)
    for c in gil:
        c.python = "3.11"
    for c in free:
        c.python = "3.13t"
    metadata = {**BUILTINS.metadata, "interpreters": {"3.11": {"python_version": "3.11.7"},
                                                      "3.13t": {"python_version": "3.13.5", "gil_enabled": False}}}  # fmt: skip
    fig = figure("throughput", Result(metadata, BUILTINS.config, [*copy.deepcopy(gil), *free], complete=True))
    (ax,) = [ax for ax in fig.axes if ax.get_visible()]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["none · 3.11", "sync · 3.11", "none · 3.13t", "sync · 3.13t"]
    styles = {c.get_label(): c.lines[0].get_linestyle() for c in ax.containers}
    assert styles["sync · 3.11"] != styles["sync · 3.13t"]
    assert "3.13.5 (free-threaded)" in fig._suptitle.get_text()


def test_throughput_needs_two_thread_counts():
    assert figure("throughput", SWEEP) is None


def test_speedup_has_one_bar_per_pooled_cell_coloured_by_verdict():
    fig = figure("speedup", BUILTINS)
    ax = fig.axes[0]
    pooled = [c for c in BUILTINS.cells if c.pool != "none"]
    assert len(ax.patches) == len(pooled)
    wins = [r for r in report(BUILTINS) if r.verdict == "wins"]
    green = [p for p in ax.patches if p.get_facecolor()[:3] == rgb(plots.VERDICT_COLOURS["wins"])]
    assert len(green) == len(wins)
    assert any(line.get_xdata()[0] == 1.0 for line in ax.get_lines())  # the line at 1.0


def test_gc_stacks_three_generations_for_every_cell():
    fig = figure("gc", BUILTINS)
    counts, pauses = fig.axes
    assert len(counts.patches) == 3 * len(BUILTINS.cells)
    assert len(pauses.patches) == len(BUILTINS.cells)


def test_latency_marks_p50_and_p99_per_cell():
    fig = figure("latency", BUILTINS)
    # One line from p50 to p99, one p50 marker and one p99 marker per cell.
    assert len(fig.axes[0].get_lines()) == 3 * len(BUILTINS.cells)
    assert fig.axes[0].get_xscale() == "log"


def test_sweep_has_one_line_per_pool_on_log_axes_and_says_the_answer():
    fig = figure("sweep", SWEEP)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["none", "sync", "freelist"]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "pooling pays" in ax.get_title()


def synthetic_sweep():
    cells = []
    for size, none_ns, pool_ns in (
        (1024, 100, 130),
        (16384, 300, 310),
        (65536, 900, 600),
        (1 << 20, 9000, 5000),
    ):
        for pool, ns in (("none", none_ns), ("sync", pool_ns)):
            ratios = [none_ns / pool_ns] * 8 if pool != "none" else []
            cells.append(Cell("buf", pool, 1, {"size": size}, runs=[Run(10, [float(ns)] * 8, [], ratios)]))
    return Result({"python_version": "3.11.7"}, {"mode": "quick"}, cells, complete=True)


def test_sweep_marks_and_labels_the_break_even_point():
    fig = figure("sweep", synthetic_sweep())
    ax = fig.axes[0]
    assert "pooling pays above size=" in ax.get_title()
    assert "KiB" in ax.get_title()
    assert any(line.get_linestyle() == "--" for line in ax.get_lines())


def test_break_even_interpolates_on_a_log_axis():
    assert plots.break_even([(1, 0.5), (100, 1.5)]) == pytest.approx(10)
    assert plots.break_even([(1, 1.5), (100, 2.0)]) is None
    assert (
        plots.sweep_label("size", [(1024, 0.8), (2048, 0.9)])
        == "pooling never pays in the size range measured"
    )


def test_plot_command_writes_png_and_svg(tmp_path):
    out = runner.invoke(app, ["plot", str(DATA / "sweep-bytes.json"), "-o", str(tmp_path), "-f", "png,svg"])
    assert out.exit_code == 0, out.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "sweep-bytes-sweep.png" in names and "sweep-bytes-sweep.svg" in names
    assert (tmp_path / "sweep-bytes-speedup.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, words",
    [
        (["plot", "missing.json"], "no such file"),
        (["plot", str(DATA / "sweep-bytes.json"), "-f", "gif"], "unknown figure format 'gif'"),
    ],
)
def test_plot_bad_input_exits_2(args, words):
    out = runner.invoke(app, args)
    assert out.exit_code == 2
    assert words in out.output


def test_plot_of_an_empty_result_exits_2(tmp_path):
    empty = tmp_path / "empty.json"
    storage.save(Result({}, {}, [], complete=True), empty)
    out = runner.invoke(app, ["plot", str(empty)])
    assert out.exit_code == 2
    assert "nothing to plot" in out.output


def test_commands_that_do_not_plot_never_import_matplotlib():
    code = "import sys; from poolbench.cli import app; import poolbench.worker; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_compare_plot_highlights_regressions(tmp_path):
    import json

    data = json.loads((DATA / "quick-builtins.json").read_text())
    for c in data["cells"]:
        for run in c["runs"]:
            run["values"] = [v * 1.5 for v in run["values"]]
    cand = tmp_path / "slow.json"
    cand.write_text(json.dumps(data))
    out = runner.invoke(
        app, ["compare", str(DATA / "quick-builtins.json"), str(cand), "--plot", str(tmp_path / "figs")]
    )
    assert out.exit_code == 1
    assert (tmp_path / "figs" / "compare-time.png").exists()
    base, slow = storage.load(DATA / "quick-builtins.json"), storage.load(cand)
    from poolbench.compare import compare_results

    fig = plots.comparison_figure(compare_results(base, slow))
    red = [p for p in fig.axes[0].patches if p.get_facecolor()[:3] == rgb("#D55E00")]
    assert red


def test_a_label_with_a_dot_keeps_every_figure_apart(tmp_path):
    from poolbench.render.plots import plot_file

    path = tmp_path / "20261129-120000-v1.2.json"
    written = plot_file(BUILTINS, path, tmp_path / "figs", ["png"])
    names = sorted(p.name for p in written)
    assert "20261129-120000-v1.2-throughput.png" in names and "20261129-120000-v1.2-speedup.png" in names
    assert len(set(names)) == len(names) >= 3
    assert all((tmp_path / "figs" / n).exists() for n in names)
