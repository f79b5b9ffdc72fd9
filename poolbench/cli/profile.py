"""``poolbench profile``: rank a program's allocation sites as pooling candidates."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..profile import MIN_COUNT, SHORT, ProfileRequest, profile_session
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
    request = ProfileRequest(
        target=target,
        args=tuple(ctx.args),
        module=module,
        params=param or (),
        pool=pool,
        ops=ops,
        scenario_dirs=scenarios_dir or (),
        short=short,
        min_count=min_count,
        timeout=check_timeout(timeout),
        scaffold=scaffold_name,
    )
    outcome = profile_session(request)
    result = outcome.profile
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
    if outcome.scaffolded is not None:
        path, best = outcome.scaffolded
        console.print(
            f"wrote {path} (from {best.site}); measure it: poolbench run {scaffold_name} --scenarios-dir {path.parent}",
            highlight=False,
        )
    if result.left_running:
        warn(
            f"the program left {result.left_running} process(es) running when it ended: poolbench ended them"
        )
    if not result.ok:
        warn(f"the program {result.ended}: the profile covers what ran until then")
        raise typer.Exit(1)
