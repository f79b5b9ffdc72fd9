"""``poolbench doctor``: find pool misuse in scenarios."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from ..doctor import DoctorRequest, doctor_session
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
    request = DoctorRequest(
        scenarios=scenarios or (),
        pools=split_list(pool, "--pool") if pool else ("sync",),
        scenario_dirs=scenarios_dir or (),
        ops=ops,
        race=race,
        timeout=check_timeout(timeout),
    )
    outcome = doctor_session(request)
    from ..render import doctor as render

    if format is DoctorFormat.json:
        typer.echo(render.to_json(outcome.diagnoses))
    else:
        console.print(render.doctor_report(outcome.diagnoses))
    if outcome.found_misuse:
        raise typer.Exit(1)
