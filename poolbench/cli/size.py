"""``poolbench size``: sweep a pool's size and recommend one."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..planning import CONCURRENCY, THREADS
from ..result import Result
from ..session import RunRequest, run_session
from ..sizing import SIZES, PoolSweep, max_wait_of, never_taken, parse_duration, sweeps
from ._app import ScenarioDirs, app, check_timeout, console, plain, split_ints, split_list, warn
from .progress import progress_bar


class SizeFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def print_sweeps(result: Result, form: str, found: Sequence[PoolSweep] | None = None) -> None:
    """A size result as ``size`` prints it, and ``show`` and ``run --resume`` read it back:
    ``table``, ``json`` or ``markdown`` (the sweeps of ``result`` unless ``found`` is given)."""
    from ..render import sizing as render

    wait = max_wait_of(result)
    found = sweeps(result, wait) if found is None else found
    if form == "json":
        typer.echo(json.dumps(render.to_json(found, wait), indent=1))
    elif form == "markdown":
        typer.echo(render.to_markdown(found, wait), nl=False)
    else:
        render.print_sweeps(console, result, found, wait)


@app.command()
def size(
    scenario: Annotated[str, typer.Argument(help="The scenario whose pool to size.", show_default=False)],
    pool: Annotated[
        list[str] | None,
        typer.Option(
            "--pool",
            "-P",
            help="Pools that make callers wait, comma-separated (bounded, sqlalchemy, psycopg, ...). "
            "[default: bounded]",
        ),
    ] = None,
    threads: Annotated[
        list[str] | None, typer.Option("--threads", "-t", help="Threads sharing the pool. [default: 4]")
    ] = None,
    concurrency: Annotated[
        list[str] | None,
        typer.Option("--concurrency", "-c", help="Async scenarios: tasks sharing the pool. [default: 16]"),
    ] = None,
    loop: Annotated[
        str | None,
        typer.Option("--loop", help="Async scenarios: the event loop, asyncio or uvloop. [default: asyncio]"),
    ] = None,
    sizes: Annotated[
        list[str] | None,
        typer.Option(
            "--sizes", "-s", help="Pool sizes to measure, comma-separated. [default: 1,2,4,8,16,32]"
        ),
    ] = None,
    max_wait: Annotated[
        str, typer.Option("--max-wait", help="The p99 acquire wait a recommended size must stay under.")
    ] = "5ms",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="KEY=VALUE: a scenario parameter (one value each)."),
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer processes and values.")] = False,
    format: Annotated[SizeFormat, typer.Option("--format", "-f", help="Output format.")] = SizeFormat.table,
    plot: Annotated[bool, typer.Option("--plot", help="Also draw throughput and p99 wait vs size.")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Result file [default: results/<time>-size-<scenario>.json]."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    scenarios_dir: ScenarioDirs = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds one worker process may take.")] = 300.0,
) -> None:
    """How big should this pool be? Throughput, acquire waits and objects in use at each size,
    and the smallest size that serves the load (with Little's law beside it)."""
    check_timeout(timeout)
    wait_ns = parse_duration(max_wait, "--max-wait")
    request = RunRequest(
        scenarios=(scenario,),
        pools=split_list(pool, "--pool") if pool else ("bounded",),
        threads=split_ints(threads, "--threads") if threads else THREADS,
        concurrency=split_ints(concurrency, "--concurrency") if concurrency else CONCURRENCY,
        loop=loop or "asyncio",
        params=param or (),
        mode="quick" if quick else "default",
        out=out,
        force=force,
        scenario_dirs=scenarios_dir or (),
        timeout=timeout,
        label=f"size-{scenario}",
        sizes=tuple(split_ints(sizes, "--sizes")) if sizes else SIZES,
        max_wait_ns=wait_ns,
        command=" ".join(["poolbench", *sys.argv[1:]]),
    )
    if any(len(v.split(",")) > 1 for v in request.params):
        raise UsageError("size takes one value per parameter", hint="-p size=1KiB, not -p size=1KiB,4KiB")
    with progress_bar() as on_progress:
        outcome = run_session(request, on_progress=on_progress)
    result = outcome.result
    found = sweeps(result, wait_ns)
    idle = never_taken(found)
    if idle is not None:
        raise UsageError(
            f"{scenario} never takes an object from the pool ({idle.pool}): its size changes nothing",
            hint="size sweeps a scenario whose operations get from the pool (its run() calls get)",
        )
    print_sweeps(result, format, found)
    if format is SizeFormat.table:
        console.print(f"saved [bold]{plain(outcome.path)}[/]")
    if plot and any(r.ops_per_sec for s in found for r in s.rows):
        from ..render.plots import plot_file

        for written in plot_file(result, outcome.path, None, ["png"]):
            if format is SizeFormat.table:
                console.print(f"wrote [bold]{plain(written)}[/]")
    for cell in result.skipped()[:1]:
        warn(f"{len(result.skipped())} size(s) skipped: {cell.error}")
    failed = result.failed()
    if failed:
        warn(f"{len(failed)} size(s) failed; the others were measured and saved")
        raise typer.Exit(1)
