"""``poolbench run``: measure scenarios with and without pooling."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..params import parse_int
from ..planning import CONCURRENCY, THREADS, parse_shard
from ..report import report
from ..result import Result
from ..session import RunRequest, run_session
from ._app import (
    Params,
    Pools,
    ScenarioDirs,
    Threads,
    app,
    check_timeout,
    console,
    plain,
    split_ints,
    split_list,
    warn,
)
from .progress import progress_bar


def _memory_limit(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        limit = parse_int(text)
    except (ValueError, OverflowError) as exc:
        raise UsageError(f"--memory-limit {text}: {exc}") from None
    if limit > 1 << 60:
        raise UsageError(f"--memory-limit {text} is more memory than any machine has", hint="e.g. 2GiB")
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
    concurrency: Annotated[
        list[str] | None,
        typer.Option(
            "--concurrency",
            "-c",
            help="Async scenarios: tasks on one event loop sharing each pool, comma-separated. "
            "[default: 1,16,128]",
        ),
    ] = None,
    loop: Annotated[
        str | None,
        typer.Option(
            "--loop",
            help="Async scenarios: the event loop, asyncio or uvloop (pip install 'poolbench[uvloop]'). "
            "[default: asyncio]",
        ),
    ] = None,
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
        list[str] | None,
        typer.Option(
            "--python",
            help="Run the workers under this interpreter; repeat to measure each cell under each "
            "(e.g. a GIL and a free-threaded build).",
        ),
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
    instructions: Annotated[
        bool,
        typer.Option(
            "--instructions",
            help="Also count instructions and simulated cache misses per op of each single-thread cell "
            "under Valgrind (after the timed processes).",
        ),
    ] = False,
    layout_seed: Annotated[
        int | None,
        typer.Option(
            "--layout-seed",
            help="Give every worker this heap-layout seed (a seed a split cell names), to reproduce its mode.",
            min=0,
            max=(1 << 31) - 1,
        ),
    ] = None,
) -> None:
    """Run the matrix scenario × pool × threads (async scenarios: × concurrency) (× parameter
    values) in isolated workers."""
    if quick and rigorous:
        raise UsageError("--quick and --rigorous exclude each other")
    if resume is not None and (
        scenarios
        or pool
        or threads
        or concurrency
        or loop
        or param
        or out
        or shard
        or quick
        or rigorous
        or layout_seed is not None
        or instructions
    ):
        raise UsageError(
            "--resume takes the matrix, mode and output file from the result file",
            hint=f"run `poolbench run --resume {resume}` (with --scenarios-dir and --python if it used them)",
        )
    check_timeout(timeout)
    request = RunRequest(
        scenarios=scenarios or (),
        pools=split_list(pool, "--pool") if pool else ("none", "sync"),
        threads=split_ints(threads, "--threads") if threads else THREADS,
        concurrency=split_ints(concurrency, "--concurrency") if concurrency else CONCURRENCY,
        loop=loop or "asyncio",
        params=param or (),
        mode="quick" if quick else "rigorous" if rigorous else "default",
        out=out,
        force=force,
        scenario_dirs=scenarios_dir or (),
        python=tuple(python or ()),
        timeout=timeout,
        label=label,
        shard=parse_shard(shard) if shard else None,
        memory_limit=_memory_limit(memory_limit),
        resume=resume,
        layout_seed=layout_seed,
        instructions=instructions,
        command=" ".join(["poolbench", *sys.argv[1:]]),
    )
    with progress_bar() as on_progress:
        outcome = run_session(request, on_progress=on_progress)
    for problem in outcome.discovery.problems:
        warn(f"scenario file {problem.source} did not load: {problem.error}")
    result = outcome.result
    from ..sizing import is_size_result

    if is_size_result(result):  # a resumed size sweep reads as `poolbench size` prints it
        from .size import print_sweeps

        print_sweeps(result, "table")
    else:
        from ..render.table import print_result

        print_result(console, result, report(result))
    console.print(f"saved [bold]{plain(outcome.path)}[/]")
    if plot and any(c.status == "ok" for c in result.cells):
        from ..render.plots import plot_file

        for written in plot_file(result, outcome.path, None, ["png"]):
            console.print(f"wrote [bold]{plain(written)}[/]")
    if not _notes(result):
        raise typer.Exit(1)


def _notes(result: Result) -> bool:
    """Print each cell's notes, once per distinct text, and the skipped and failed cells; whether
    none failed."""
    by_text: dict[str, list[str]] = {}
    for cell in result.cells:
        for text in cell.warnings:
            by_text.setdefault(text, []).append(cell.label)
    for text, labels in by_text.items():
        # One line per distinct note: a free-threaded run would otherwise repeat two per cell.
        warn(f"{labels[0]}: {text}" if len(labels) == 1 else f"{len(labels)} cells: {text}")
    for cell in result.skipped()[:1]:
        warn(f"{len(result.skipped())} cell(s) skipped: {cell.error}")
    if result.config.get("instructions"):
        # Counted cells are single-thread cells of synchronous scenarios: say what the others are.
        left = [c for c in result.cells if c.status == "ok" and not c.instructions]
        why = [
            (sum(1 for c in left if c.threads > 1 and not c.concurrency), "with more than one thread"),
            (sum(1 for c in left if c.concurrency), "of asyncio scenarios"),
            (sum(1 for c in left if c.python and c.threads == 1 and not c.concurrency),
             "of a run under several interpreters"),
        ]  # fmt: skip
        if any(n for n, _ in why):
            warn(f"--instructions: {sum(n for n, _ in why)} cell(s) not counted, timed only: "
                 + ", ".join(f"{n} {text}" for n, text in why if n)
                 + " (Valgrind runs one thread at a time; a run under several interpreters is not counted)")  # fmt: skip
    failed = result.failed()
    if failed:
        warn(f"{len(failed)} cell(s) failed; the others were measured and saved")
        return False
    return True
