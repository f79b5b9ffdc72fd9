"""``poolbench compare``: the CI regression gate."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .. import storage
from ..compare import METRICS, compare_results, parse_thresholds
from ..errors import UsageError
from ._app import app, console, plain, split_list, warn


class CompareFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


@app.command()
def compare(
    base: Annotated[Path, typer.Argument(help="The baseline result file.")],
    cand: Annotated[Path, typer.Argument(help="The candidate result file.")],
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="METRIC=VALUE, e.g. time=5%, allocs=0 (repeatable)."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help=f"Metrics to compare, comma-separated [default: {','.join(METRICS)}]."),
    ] = None,
    format: Annotated[
        CompareFormat, typer.Option("--format", "-f", help="Output format.")
    ] = CompareFormat.table,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also draw the change per cell into this folder.")
    ] = None,
    strict_env: Annotated[
        bool, typer.Option("--strict-env", help="Exit 2 when the files come from different environments.")
    ] = False,
    allow_missing: Annotated[
        bool,
        typer.Option("--allow-missing", help="A base cell missing from the candidate is not a regression."),
    ] = False,
    allow_incomplete: Annotated[
        bool,
        typer.Option(
            "--allow-incomplete", help="Compare an interrupted candidate's finished cells instead of failing."
        ),
    ] = False,
) -> None:
    """Compare two results cell by cell; exit 1 on a regression (the CI gate)."""
    thresholds = parse_thresholds(threshold or [])
    metrics = split_list(metric, "--metric") if metric else list(METRICS)
    comparison = compare_results(
        storage.load(base),
        storage.load(cand),
        thresholds=thresholds,
        metrics=metrics,
        allow_missing=allow_missing,
        allow_incomplete=allow_incomplete,
    )
    from ..render import comparison as render

    for line in render.environment_warnings(comparison):
        warn(line)
    if strict_env and comparison.env_differences:
        raise UsageError(
            "the two files come from different environments (--strict-env)",
            hint="compare results from the same Python build, CPU and poolbench version",
        )
    if format is CompareFormat.table:
        console.print(render.comparison_table(comparison))
    elif format is CompareFormat.markdown:
        typer.echo(render.to_markdown(comparison), nl=False)
    else:
        typer.echo(render.to_json(comparison), nl=False)
    if plot is not None:
        from ..render.plots import plot_comparison

        for written in plot_comparison(comparison, plot, ["png", "svg"]):
            console.print(f"wrote [bold]{plain(written)}[/]")
    if comparison.failing:
        raise typer.Exit(1)
