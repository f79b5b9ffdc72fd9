"""``poolbench profile``: rank a program's allocation sites as pooling candidates."""

from __future__ import annotations

import inspect
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..profile import MAX_OPS, MIN_COUNT, SHORT, Profile, Target, check_scaffold_name, run_target, scaffold
from ..storage import make_folder
from ._app import Params, ScenarioDirs, app, check_timeout, console, warn


class ProfileFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def profile(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(help="SCRIPT.py [ARGS...], a module with -m, or a scenario name.", show_default=False),
    ],
    module: Annotated[
        bool, typer.Option("-m", "--module", help="TARGET is a module, run as python -m.")
    ] = False,
    param: Params = None,
    pool: Annotated[str, typer.Option("--pool", "-P", help="Scenarios: the pool to run under.")] = "none",
    ops: Annotated[int, typer.Option("--ops", help="Scenarios: operations to run.")] = 5000,
    scenarios_dir: ScenarioDirs = None,
    top: Annotated[int, typer.Option("--top", "-n", help="Sites to show.")] = 10,
    short: Annotated[
        int, typer.Option("--short", help="Short-lived: freed within this many visits of its line.")
    ] = SHORT,
    min_count: Annotated[
        int, typer.Option("--min-count", help="Visits a candidate needs at least.")
    ] = MIN_COUNT,
    format: Annotated[
        ProfileFormat, typer.Option("--format", "-f", help="Output format.")
    ] = ProfileFormat.table,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also draw the top sites as bars (PNG/SVG/PDF).")
    ] = None,
    scaffold_name: Annotated[
        str | None,
        typer.Option(
            "--scaffold", help="Write scenarios/NAME.py for the best candidate, ready for poolbench run."
        ),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds the program may run.")] = 600.0,
) -> None:
    """Find what is worth pooling: run a program under memray, rank its allocation sites.

    Arguments after the script go to it (put -- before any that look like poolbench's options).
    """
    if top < 1:
        raise UsageError(f"--top must be at least 1, not {top}")
    if short < 1 or min_count < 1 or not 1 <= ops <= MAX_OPS:
        raise UsageError(f"--short and --min-count take whole numbers of at least 1, --ops 1 to {MAX_OPS:,}")
    check_timeout(timeout)
    if scaffold_name:
        check_scaffold_name(scaffold_name)  # before the program runs, not after
    args = tuple(ctx.args)
    if module:
        _check_module(target)
        spec = Target("module", target, args)
    elif target.endswith(".py") or os.sep in target or Path(target).is_file():
        if Path(target).is_dir():
            raise UsageError(
                f"{target} is a folder, not a script", hint="name a .py file, or -m for a module"
            )
        if not Path(target).is_file():
            raise UsageError(f"no such script: {target}")
        _check_compiles(Path(target))
        spec = Target("script", os.path.abspath(target), args)
    else:
        spec = _scenario_target(target, param, pool, ops, scenarios_dir, args)
    result = run_target(spec, timeout=timeout, short=short, min_count=min_count)
    from ..render import profile as render

    if format is ProfileFormat.json:
        typer.echo(render.to_json(result, top))
    elif format is ProfileFormat.markdown:
        typer.echo(render.to_markdown(result, top))
    else:
        console.print(render.profile_report(result, top))
    if plot is not None:
        render.plot(result, plot, top)
        if format is ProfileFormat.table:
            console.print(f"plot: {plot}", highlight=False)
    if scaffold_name:
        _write_scaffold(result, scaffold_name)
    if result.left_running:
        warn(
            f"the program left {result.left_running} process(es) running when it ended: poolbench ended them"
        )
    if not result.ok:
        warn(f"the program {result.ended}: the profile covers what ran until then")
        raise typer.Exit(1)


def _scenario_target(
    name: str, param: list[str] | None, pool: str, ops: int, dirs: list[Path] | None, args: tuple[str, ...]
) -> Target:
    from ..discovery import discover
    from ..params import split_assignments
    from ..planning import plan

    if args:
        raise UsageError(f"unexpected arguments for scenario {name!r}: {' '.join(args)}")
    [(ref, cls)] = discover(dirs or []).lookup([name])
    groups = plan([(ref, cls)], [pool], [1], split_assignments(param or []))
    if len(groups) != 1:
        raise UsageError(
            f"profile runs one set of parameters, not {len(groups)}", hint="give -p one value each"
        )
    params = groups[0].params
    source = inspect.getsourcefile(cls)
    return Target("scenario", name, scenario=ref.to_json(), params=params, pool=pool, ops=ops, source=source)


def _check_module(name: str) -> None:
    """``-m NAME`` must name a module found as ``python -m`` finds it (from here). Only its
    top-level package is looked up: finding ``a.b`` would import ``a``, running the user's code in
    poolbench's own process; a missing submodule is reported by the profiled run."""
    import importlib.util
    import sys

    top = name.split(".", 1)[0]
    sys.path.insert(0, os.getcwd())
    try:
        found = importlib.util.find_spec(top) if top.isidentifier() else None
    except (ImportError, ValueError):
        found = None
    finally:
        sys.path.pop(0)
    if found is None:
        raise UsageError(
            f"no module named {top!r}", hint="-m takes a module importable from here, e.g. -m myapp.server"
        )


def _check_compiles(script: Path) -> None:
    """A script that does not compile is bad input, named by its own line, before memray starts
    (it was profiled: 1,841 allocations of the interpreter start, "raised SyntaxError")."""
    try:
        compile(script.read_bytes(), str(script), "exec")
    except SyntaxError as exc:
        raise UsageError(f"{script}: {exc.msg} (line {exc.lineno})") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {script}: {exc}") from None


def _write_scaffold(result: Profile, name: str) -> None:
    best = next((s for s in result.sites if s.candidate), None)
    if best is None:
        raise UsageError("no candidate to scaffold: no site is frequent, short-lived and uniform")
    path = check_scaffold_name(name)
    make_folder(path.parent)
    path.write_text(scaffold(best, name))
    console.print(
        f"wrote {path} (from {best.site}); measure it: poolbench run {name} --scenarios-dir {path.parent}",
        highlight=False,
    )
