"""The progress bar a run shows: cells done / total, the current one, time left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column

from ..runner import ProgressCallback
from ._app import errors


@contextmanager
def progress_bar() -> Iterator[ProgressCallback]:
    # The description (the cell being measured) gives way first on a narrow terminal: the counts
    # and the time left are what a user reads, and at 80 columns they were cut to "35…".
    columns = (
        TextColumn(
            "{task.description}",
            markup=False,
            table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
        ),
        BarColumn(bar_width=20),
        MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=9)),
        TextColumn("processes ·", table_column=Column(no_wrap=True)),
        TimeRemainingColumn(),
    )
    # Off when stderr is not a terminal: CI logs get no control sequences or blank lines.
    with Progress(
        *columns, console=errors, transient=True, disable=not errors.is_terminal, expand=True
    ) as progress:
        task = progress.add_task("starting", total=None)

        def update(done: int, total: int, current: str) -> None:
            progress.update(task, completed=done, total=total, description=current)

        yield update
