"""``poolbench doctor``: find pool misuse in scenarios."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from ..discovery import discover
from ..doctor import diagnose
from ..errors import UsageError
from ..runner import check_pools
from ._app import app, console, split_list
from .run import Pools, ScenarioDirs


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
) -> None:
    """Run scenarios under checking pools; report leaks, double puts, dirty reuse, use after put."""
    if ops < 1:
        raise UsageError(f"--ops must be at least 1, not {ops}")
    if not 0 <= race < 1:
        raise UsageError(f"--race must be between 0 and 1, not {race:g}")
    found = discover(scenarios_dir or [])
    selected = found.lookup(scenarios or found.builtins())
    pools = [p for p in check_pools(split_list(pool, "--pool") if pool else ["sync"]) if p != "none"]
    results = diagnose(selected, pools, ops=ops, race=race)
    findings = [(d, f) for d in results for f in d.findings]
    errors = [d for d in results if d.error]
    if format is DoctorFormat.json:
        data = [{"scenario": d.scenario, "pool": d.pool, **f.to_json()} for d, f in findings] + [
            {"scenario": d.scenario, "pool": d.pool, "kind": "error", "detail": d.error} for d in errors
        ]
        typer.echo(json.dumps({"findings": data, "checked": len(results)}, indent=1))
    else:
        table = Table(header_style="bold", title="poolbench doctor", title_justify="left")
        for column in ("scenario", "pool", "finding", "count", "call site", "fix"):
            table.add_column(column, overflow="fold")
        for d, f in findings:
            table.add_row(
                d.scenario,
                d.pool,
                f"[bold red]{f.kind}[/]",
                str(f.count),
                f.site + (f"\n{f.detail}" if f.detail else ""),
                f.hint,
            )
        for d in errors:
            table.add_row(d.scenario, d.pool, "[bold red]error[/]", "", d.error or "", "fix the scenario")
        if findings or errors:
            console.print(table)
        console.print(
            f"{len(results)} scenario/pool run(s) checked: "
            + (f"[bold red]{len(findings)} finding(s)[/]" if findings else "[green]no misuse found[/]")
        )
    if findings or errors:
        raise typer.Exit(1)
