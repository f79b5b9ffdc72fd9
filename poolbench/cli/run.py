"""``poolbench run``: measure scenarios with and without pooling."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..merge import parse_shard
from ..params import parse_int
from ..render.format import where
from ..report import report
from ..session import RunRequest, run_session
from ._app import app, console, split_ints, split_list, warn
from .progress import progress_bar

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


def _memory_limit(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        limit = parse_int(text)
    except ValueError as exc:
        raise UsageError(f"--memory-limit {text}: {exc}") from None
    if limit < 64 * 1024 * 1024:
        raise UsageError(f"--memory-limit {text} is below 64MiB: a Python worker cannot start in that")
    return limit


@app.command()
def run(
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(help="Scenarios to run [default: the built-ins].", show_default=False),
    ] = None,
    pool: Pools = None,
    threads: Threads = None,
    param: Params = None,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Fewer processes and values: about a minute for the default matrix."),
    ] = False,
    rigorous: Annotated[bool, typer.Option("--rigorous", help="More processes and longer values.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Result file [default: results/<time>-<label>.json].")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    scenarios_dir: ScenarioDirs = None,
    python: Annotated[
        str | None, typer.Option("--python", help="Run the workers under this interpreter.")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds one worker process may take.")] = 300.0,
    label: Annotated[
        str | None, typer.Option("--label", help="Name part of the default result file.")
    ] = None,
    plot: Annotated[
        bool, typer.Option("--plot", help="Also draw the figures, next to the result file.")
    ] = False,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            "--memory-limit", help="Cap each worker's memory (e.g. 2GiB): a runaway scenario fails its cell."
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume", help="Finish an interrupted result file: only the processes it lacks are measured."
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard", help="K/N: run only slice K of N of the matrix (combine with `poolbench merge`)."
        ),
    ] = None,
) -> None:
    """Run the matrix scenario × pool × threads (× parameter values) in isolated workers."""
    if quick and rigorous:
        raise UsageError("--quick and --rigorous exclude each other")
    if resume is not None and (scenarios or pool or threads or param or out or shard or quick or rigorous):
        raise UsageError(
            "--resume takes the matrix, mode and output file from the result file",
            hint=f"run `poolbench run --resume {resume}` alone",
        )
    if timeout <= 0:
        raise UsageError(f"--timeout must be positive, not {timeout:g}")
    request = RunRequest(
        scenarios=scenarios or (),
        pools=split_list(pool, "--pool") if pool else ("none", "sync"),
        threads=split_ints(threads, "--threads") if threads else (1, 2, 4),
        params=param or (),
        mode="quick" if quick else "rigorous" if rigorous else "default",
        out=out,
        force=force,
        scenario_dirs=scenarios_dir or (),
        python=python,
        timeout=timeout,
        label=label,
        shard=parse_shard(shard) if shard else None,
        memory_limit=_memory_limit(memory_limit),
        resume=resume,
    )
    with progress_bar() as on_progress:
        outcome = run_session(request, on_progress=on_progress)
    for problem in outcome.discovery.problems:
        warn(f"scenario file {problem.source} did not load: {problem.error}")
    result = outcome.result
    from ..render.table import print_result

    console.print(f"[dim]{where(result.metadata)} · mode {request.mode}[/]")
    print_result(console, result, report(result))
    console.print(f"saved [bold]{outcome.path}[/]")
    if plot and any(c.status == "ok" for c in result.cells):
        from .plot import plot_files

        for written in plot_files(result, outcome.path, None, ["png"]):
            console.print(f"wrote [bold]{written}[/]")
    for cell in result.cells:
        for text in cell.warnings:
            warn(f"{cell.label}: {text}")
    for cell in result.skipped()[:1]:
        warn(f"{len(result.skipped())} cell(s) skipped: {cell.error}")
    failed = result.failed()
    if failed:
        warn(f"{len(failed)} cell(s) failed; the others were measured and saved")
        raise typer.Exit(1)
