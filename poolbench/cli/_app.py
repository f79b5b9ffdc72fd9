"""The Typer app, the shared option aliases and the one error boundary.

Only this package imports typer. Commands parse options, call one library function and hand the
result to rendering.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from ..errors import PoolbenchError, UsageError


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr)
    if not console.is_terminal:
        # CI logs and pipes: rich would assume 80 columns and fold tables and messages.
        console = Console(stderr=stderr, width=200)
    return console


console = _console(stderr=False)
errors = _console(stderr=True)


def fail(message: str, *, hint: str | None = None) -> None:
    """Print one red line (and a hint) on stderr."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    if hint:
        errors.print(f"[dim]hint:[/] {hint}", highlight=False)


def warn(message: str) -> None:
    errors.print(f"[yellow]warning:[/] {message}", highlight=False)


class _Group(TyperGroup):
    """Turns every :class:`PoolbenchError` into a red line and its exit code (2 for bad input)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PoolbenchError as exc:
            fail(exc.message, hint=exc.hint)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_Group,
    name="poolbench",
    help="Does pooling this object pay off here, and by how much?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def split_list(values: list[str] | None, what: str) -> list[str]:
    """Comma-separated and repeated option values, flattened: ``-t 1,2 -t 4`` → 1, 2, 4."""
    items = [v.strip() for value in values or [] for v in value.split(",")]
    if any(not v for v in items):
        raise UsageError(f"empty value in {what}", hint=f"write {what} as comma-separated values")
    return items


def split_ints(values: list[str] | None, what: str) -> list[int]:
    out = []
    for item in split_list(values, what):
        try:
            out.append(int(item))
        except ValueError:
            raise UsageError(f"{what} takes whole numbers, not {item!r}", hint=f"e.g. {what} 1,2,4") from None
    return out
