"""``poolbench plot``: figures from result files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import storage
from ..errors import UsageError
from ._app import app, console, plain, split_list, warn

FORMATS = ("png", "svg", "pdf")


def check_formats(values: list[str] | None) -> list[str]:
    formats = split_list(values, "--format") if values else ["png"]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UsageError(f"unknown figure format {bad[0]!r}", hint=f"--format takes {', '.join(FORMATS)}")
    return formats


Formats = Annotated[
    list[str] | None, typer.Option("--format", "-f", help="png, svg or pdf, comma-separated [default: png].")
]


@app.command()
def plot(
    results: Annotated[list[Path], typer.Argument(help="Result files written by poolbench run.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the figures [default: next to each file].")
    ] = None,
    format: Formats = None,
) -> None:
    """Draw the figures each result has the data for: throughput, speedup, GC, latency, sweeps."""
    formats = check_formats(format)
    loaded = [(path, storage.load(path)) for path in results]
    targets: dict[Path, Path] = {}
    for path, _ in loaded:
        target = (out or path.parent) / path.stem
        if target in targets:
            raise UsageError(
                f"{targets[target]} and {path} would draw into the same figures ({target}-*.png)",
                hint="plot them one at a time with an --out of their own",
            )
        targets[target] = path
    from ..render.plots import plot_file

    for (path, result), target in zip(loaded, targets, strict=True):
        if not result.complete:
            warn(f"{path} is incomplete (an interrupted run): its figures say so")
        with storage.exclusive(target.with_name(f"{target.name}-figures")):
            for written in plot_file(result, path, out, formats):
                console.print(f"wrote [bold]{plain(written)}[/]")
