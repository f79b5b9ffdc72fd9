"""``poolbench show``: re-render a saved result."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .. import storage
from ..report import report
from ._app import app, console, warn


class ShowFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    pyperf = "pyperf"
    benchstat = "benchstat"


@app.command()
def show(
    result_file: Annotated[Path, typer.Argument(help="A result file written by poolbench run.")],
    format: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
) -> None:
    """Re-render a saved result: table, JSON summary, CSV, Markdown, or pyperf/benchstat exports."""
    result = storage.load(result_file)
    reports = report(result)
    if not result.complete:
        warn(f"{result_file} is incomplete (the run was interrupted or is still going)")
    from ..sizing import is_size_result

    if is_size_result(result) and format in (ShowFormat.table, ShowFormat.markdown, ShowFormat.json):
        # A size sweep reads as `poolbench size` printed it; CSV and the exports stay per cell.
        from .size import print_sweeps

        print_sweeps(result, format.value)
        return
    if format is ShowFormat.table:
        from ..render.table import print_result

        print_result(console, result, reports)
        return
    from ..render import export

    text = {
        ShowFormat.json: lambda: export.to_summary_json(result, reports),
        ShowFormat.csv: lambda: export.to_csv(reports),
        ShowFormat.markdown: lambda: export.to_markdown(result, reports),
        ShowFormat.pyperf: lambda: export.to_pyperf(result),
        ShowFormat.benchstat: lambda: export.to_benchstat(result),
    }[format]()
    typer.echo(text, nl=False)
