"""The progress bar a run shows: cells done / total, the current one, time left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..runner import ProgressCallback
from ._app import errors


@contextmanager
def progress_bar() -> Iterator[ProgressCallback]:
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("processes ·"),
        TimeRemainingColumn(),
    )
    # Off when stderr is not a terminal: CI logs get no control sequences or blank lines.
    with Progress(*columns, console=errors, transient=True, disable=not errors.is_terminal) as progress:
        task = progress.add_task("starting", total=None)

        def update(done: int, total: int, current: str) -> None:
            progress.update(task, completed=done, total=total, description=current)

        yield update
