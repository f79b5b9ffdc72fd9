"""The Typer app, the shared option aliases and the one error boundary.

Only this package imports typer. Commands parse options, call one library function and hand the
result to rendering.
"""

from __future__ import annotations

import math
import os
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from ..errors import PoolbenchError, UsageError

INTERNAL_ERROR = 3
"""Exit code of a bug in poolbench itself: never 1, which ``compare`` uses for "regression"."""


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr)
    if not console.is_terminal:
        # Pipes and CI logs: a width asked for with COLUMNS is kept for tables
        # (``COLUMNS=120 poolbench show F > f.txt``); else, piped at a terminal (``show F | less``,
        # stderr still the terminal), that terminal's width, as rich gives a terminal; else (a CI
        # log) 200, where rich would assume 80 and fold the tables. Messages are never folded
        # (soft_wrap).
        asked = os.environ.get("COLUMNS", "") if not stderr else ""
        width = int(asked) if asked.isdigit() and 20 <= int(asked) <= 1000 else _terminal_width() or 200
        console = Console(stderr=stderr, width=width)
    return console


def _terminal_width() -> int | None:
    """The width of the terminal on stderr, if stderr is one."""
    try:
        return os.get_terminal_size(2).columns if os.isatty(2) else None
    except OSError:
        return None


console = _console(stderr=False)
errors = _console(stderr=True)


def plain(value: object) -> str:
    """User text (a path, a scenario or pool name, metadata) made safe to put in rich markup:
    ``[/]`` in a file name is text, not a closing tag."""
    return escape(str(value))


def fail(message: str, *, hint: str | None = None) -> None:
    """Print one red line (and a hint) on stderr; the message and hint are plain text."""
    errors.print(f"[bold red]error:[/] {plain(message)}", highlight=False, soft_wrap=True)
    if hint:
        errors.print(f"[dim]hint:[/] {plain(hint)}", highlight=False, soft_wrap=True)


def check_timeout(timeout: float) -> float:
    """``--timeout``: a positive, finite number of seconds (run, doctor and profile take one)."""
    if not math.isfinite(timeout) or timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, not {timeout:g}")
    return timeout


def warn(message: str) -> None:
    errors.print(f"[yellow]warning:[/] {plain(message)}", highlight=False, soft_wrap=True)


class _Group(TyperGroup):
    """The one error boundary: a :class:`PoolbenchError` is a red line and its exit code (2 for
    bad input); Ctrl-C, SIGTERM or SIGHUP outside a run is exit 130; anything else is a bug of poolbench's, exit 3
    with a pointer to report it (``POOLBENCH_DEBUG=1`` shows the traceback)."""

    def invoke(self, ctx: Any) -> Any:
        from ._signals import stop_signals

        try:
            with stop_signals():
                return super().invoke(ctx)
        except PoolbenchError as exc:
            fail(exc.message, hint=exc.hint)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            fail("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("click", "typer"):
                raise  # exits, usage errors and aborts of the CLI framework itself
            if os.environ.get("POOLBENCH_DEBUG"):
                traceback.print_exc()
            fail(
                f"internal error: {type(exc).__name__}: {exc}",
                hint="this is a bug in poolbench: please report it with the command line "
                "(POOLBENCH_DEBUG=1 shows the traceback)",
            )
            raise typer.Exit(INTERNAL_ERROR) from None


app = typer.Typer(
    cls=_Group,
    name="poolbench",
    help="Does pooling this object pay off here, and by how much?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"poolbench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Does pooling this object pay off here, and by how much?"""


Pools = Annotated[
    list[str] | None,
    typer.Option(
        "--pool",
        "-P",
        help="Pool strategies, comma-separated (none is always measured). [default: none,sync]",
    ),
]
Threads = Annotated[
    list[str] | None, typer.Option("--threads", "-t", help="Thread counts, comma-separated. [default: 1,2,4]")
]
Params = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="KEY=V1,V2: parameter values to sweep (sizes like 64KiB)."),
]
ScenarioDirs = Annotated[
    list[Path] | None,
    typer.Option("--scenarios-dir", help="Also load scenarios from this folder (repeatable)."),
]


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
