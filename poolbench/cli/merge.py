"""``poolbench merge``: combine shard files into one result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import storage
from ..merge import merge_results
from ._app import app, console, plain


@app.command()
def merge(
    files: Annotated[list[Path], typer.Argument(help="Result files of `poolbench run --shard K/N`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The merged result file.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Merge the shard files of one matrix into one result file."""
    merged = merge_results([(path, storage.load(path)) for path in files])
    with storage.exclusive(out):  # a run writing `out` as it goes holds it too
        storage.save(merged, out, overwrite=force)
    console.print(f"merged {len(files)} file(s), {len(merged.cells)} cells: saved [bold]{plain(out)}[/]")
