"""``poolbench doctor``: find pool misuse in scenarios."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from ..discovery import discover
from ..doctor import diagnose_isolated
from ..errors import UsageError
from ..planning import check_pools
from ..profile import MAX_OPS
from ._app import Pools, ScenarioDirs, app, check_timeout, console, split_list


class DoctorFormat(StrEnum):
    table = "table"
    json = "json"


@app.command()
def doctor(
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(help="Scenarios to check [default: the built-ins].", show_default=False),
    ] = None,
    scenarios_dir: ScenarioDirs = None,
    pool: Pools = None,
    ops: Annotated[int, typer.Option("--ops", help="Operations to run per scenario and pool.")] = 2000,
    race: Annotated[
        float,
        typer.Option(
            "--race", help="Drop this fraction of puts at random (0-1), as Go's race detector does."
        ),
    ] = 0.0,
    format: Annotated[
        DoctorFormat, typer.Option("--format", "-f", help="Output format.")
    ] = DoctorFormat.table,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", help="Seconds one scenario and pool may take (each runs in its own process)."
        ),
    ] = 300.0,
) -> None:
    """Run scenarios under checking pools; report leaks, double puts, dirty reuse, use after put."""
    if not 1 <= ops <= MAX_OPS:
        raise UsageError(f"--ops takes 1 to {MAX_OPS:,} operations, not {ops}")
    if not 0 <= race < 1:
        raise UsageError(f"--race must be between 0 and 1, not {race:g}")
    check_timeout(timeout)
    found = discover(scenarios_dir or [])
    selected = found.lookup(scenarios or found.builtins())
    pools = [p for p in check_pools(split_list(pool, "--pool") if pool else ["sync"]) if p != "none"]
    results = diagnose_isolated(selected, pools, ops=ops, race=race, timeout=timeout)
    from ..render import doctor as render

    if format is DoctorFormat.json:
        typer.echo(render.to_json(results))
    else:
        console.print(render.doctor_report(results))
    if any(d.findings or d.error for d in results):
        raise typer.Exit(1)
