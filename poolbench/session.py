"""``poolbench run`` as a library call: discover, plan, measure, save as it goes.

The result file is rewritten (atomically) after every worker process, marked incomplete until the
last one, so a crash or an interruption (``KeyboardInterrupt``; the CLI turns SIGTERM into one)
loses at most the process being measured. Callable from any thread: no signal handlers here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__, env, storage
from .discovery import Discovery, discover
from .errors import Interrupted, ResultFileError, UsageError
from .params import split_assignments
from .planning import CONCURRENCY, THREADS, Group, check_pools, plan, shard_of, sized_groups, under
from .result import Cell, Result
from .runner import ProgressCallback, measure_groups
from .settings import MODES, SMOKE, Settings
from .sizing import MAX_WAIT_NS, max_wait_of


@dataclass(frozen=True)
class RunRequest:
    scenarios: Sequence[str] = ()
    pools: Sequence[str] = ("none", "sync")
    threads: Sequence[int] = THREADS
    """Thread counts of the synchronous scenarios."""
    concurrency: Sequence[int] = CONCURRENCY
    """Task counts of the async scenarios (tasks on one event loop)."""
    params: Sequence[str] = ()
    mode: str = "default"
    out: Path | None = None
    results_dir: Path = Path("results")
    force: bool = False
    scenario_dirs: Sequence[Path] = ()
    python: str | Sequence[str] | None = None
    """The interpreter(s) the workers run under (``--python``, repeatable); none: this one."""
    timeout: float = 300.0
    label: str | None = None
    shard: tuple[int, int] | None = None
    memory_limit: int | None = None
    resume: Path | None = None
    layout_seed: int | None = None
    """Every worker's heap-layout seed (to reproduce a mode); none: a fresh one per process."""
    loop: str = "asyncio"
    """The event loop of the async scenarios (``--loop``): ``asyncio`` or ``uvloop``."""
    command: str | None = None
    """The command line, as recorded in the result's metadata (the CLI passes ``sys.argv``)."""
    sizes: Sequence[int] = ()
    """A size sweep (``poolbench size``): each pool at each of these sizes, alone in its
    processes, with the observed pass; empty for ``run``."""
    max_wait_ns: float = MAX_WAIT_NS
    """A size sweep's wait target (``--max-wait``): recorded in the config for ``show``."""
    instructions: bool = False
    """``run --instructions``: also count each single-thread cell under Valgrind."""

    @property
    def pythons(self) -> tuple[str, ...]:
        return _pythons(self.python)


def _pythons(value: object) -> tuple[str, ...]:
    """``--python`` as given, or as a result file's config has it (one string in files written
    before ``--python`` could be repeated)."""
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ResultFileError(f"bad python in the config: {value!r}")


def _interpreters(pythons: Sequence[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """What each ``--python`` is (checked by running it), and the label -> executable of a run
    under several (empty under one: its cells carry no label)."""
    if not pythons:
        return [env.interpreter()], {}
    repeated = [p for p in dict.fromkeys(pythons) if pythons.count(p) > 1]
    if repeated:
        raise UsageError(f"--python {repeated[0]} is given twice")
    infos = [env.check_python(p) for p in pythons]
    if len(infos) == 1:
        return infos, {}
    return infos, dict(zip(env.labels(infos), pythons, strict=True))


def _check_loop(loop: str) -> str:
    """``--loop`` as given, if this machine can run it (the workers import it)."""
    from importlib.util import find_spec

    from .timing import LOOPS

    if loop not in LOOPS:
        raise UsageError(f"unknown event loop {loop!r}", hint=f"--loop takes one of {', '.join(LOOPS)}")
    if loop == "uvloop" and find_spec("uvloop") is None:
        raise UsageError(
            "--loop uvloop needs uvloop, which is not installed", hint="pip install 'poolbench[uvloop]'"
        )
    return loop


def _check_members(request: RunRequest, selected: Sequence[tuple[Any, type[Any]]]) -> None:
    """``--threads`` sets the synchronous scenarios' matrix, ``--concurrency`` the async ones':
    one given for a selection that has none of its kind would be silently ignored."""
    kinds = {cls.is_async() for _, cls in selected}
    if tuple(request.concurrency) != CONCURRENCY and True not in kinds:
        raise UsageError(
            "--concurrency applies to async scenarios, and none is selected",
            hint="synchronous scenarios take --threads; `poolbench list` marks the async ones",
        )
    if request.loop != "asyncio" and True not in kinds:
        raise UsageError(
            f"--loop {request.loop} applies to async scenarios, and none is selected",
            hint="`poolbench list` marks the async ones",
        )
    if tuple(request.threads) != THREADS and False not in kinds:
        raise UsageError(
            "--threads applies to synchronous scenarios, and every selected one is async",
            hint="async scenarios take --concurrency (tasks on one event loop), e.g. -c 1,16,128",
        )


@dataclass
class RunOutcome:
    result: Result
    path: Path
    discovery: Discovery


def run_session(
    request: RunRequest,
    *,
    on_progress: ProgressCallback | None = None,
    discovery: Discovery | None = None,
) -> RunOutcome:
    existing = None
    if request.resume is not None:
        existing = storage.load(request.resume)
        if existing.complete:
            raise UsageError(f"{request.resume} is complete: nothing to resume")
        request = resume_request(existing, request)
    found = discovery or discover(request.scenario_dirs)
    names = list(request.scenarios) or found.builtins()
    selected = found.lookup(names)
    _check_members(request, selected)
    if request.sizes:
        request = _check_sizes(request, selected)
    if request.instructions:
        from .instructions import valgrind

        valgrind()  # missing: one line, exit 2, before anything is measured
    infos, executables = _interpreters(request.pythons)
    groups = under(
        plan(
            selected, request.pools, request.threads, split_assignments(request.params), request.concurrency
        ),
        list(executables),
    )
    if request.sizes:
        groups = sized_groups(groups, request.sizes)
    if request.shard is not None:
        groups = [groups[i] for i in shard_of(groups, request.shard)]
    settings = replace(
        SMOKE if request.mode == "smoke" else MODES[request.mode], loop=_check_loop(request.loop)
    )
    if request.sizes:  # nothing counted: a sweep asks about waits and throughput, not allocations
        settings = replace(settings, observe=True, count_processes=0)
    label = request.label or ("-".join(dict.fromkeys(names)) if request.scenarios else "builtins")
    path = request.out or storage.default_path(request.results_dir, label)
    planned = _Plan(request, groups, settings, executables, path, found)
    if existing is not None:
        existing.metadata["resumed"] = datetime.now(UTC).isoformat(timespec="seconds")
        existing.metadata.pop("interrupted", None)
        return _measure_and_save(existing, planned, on_progress, overwrite=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    result = Result(
        metadata={
            "poolbench_version": __version__,
            "date_started": started,
            "command": request.command or "poolbench run",
            **infos[0],
            **({"interpreters": dict(zip(executables, infos, strict=True))} if executables else {}),
            **env.machine(),
        },
        config={
            "mode": request.mode,
            "settings": settings.to_json(),
            "scenarios": [ref.to_json() for ref, _ in selected],
            "pools": list(groups[0].pools) if groups else [],
            "threads": list(dict.fromkeys(request.threads)),
            "concurrency": list(dict.fromkeys(request.concurrency)),
            "loop": request.loop,
            "params": list(request.params),
            "timeout": request.timeout,
            "shard": list(request.shard) if request.shard else None,
            "python": list(request.pythons) or None,
            "scenario_dirs": [str(d) for d in request.scenario_dirs],
            "memory_limit": request.memory_limit,
            "layout_seed": request.layout_seed,
            **({"instructions": True} if request.instructions else {}),
            **(
                {
                    "command": "size",
                    "sizes": list(request.sizes),
                    "max_wait_ns": request.max_wait_ns,
                    "pools": list(request.pools),
                }
                if request.sizes
                else {}
            ),
        },
    )
    return _measure_and_save(result, planned, on_progress, overwrite=request.force)


def resume_request(result: Result, request: RunRequest) -> RunRequest:
    """The request that made ``result``, read back from its config: only what is data.

    A result file is data a user may have downloaded; resuming it must never run code the user did
    not name. So the matrix, the mode and the settings come from the file, but the interpreter
    (``--python``) and the scenario folders (``--scenarios-dir``) come from the command line, and
    a file that names others is refused with what differs. Scenarios are found by name through
    the command line's discovery; a module named inside the file is never imported.
    """
    config = result.config
    path = request.resume
    assert path is not None
    try:
        resumed = RunRequest(
            scenarios=[str(s["name"]) for s in config["scenarios"]],
            pools=[str(p) for p in config["pools"]],
            threads=[int(t) for t in config["threads"]],
            concurrency=[int(c) for c in config.get("concurrency", CONCURRENCY)],
            params=[str(p) for p in config.get("params", [])],
            mode=str(config["mode"]),
            out=path,
            force=True,
            scenario_dirs=request.scenario_dirs,
            python=request.python,
            timeout=float(config.get("timeout", 300.0)),
            shard=(int(config["shard"][0]), int(config["shard"][1])) if config.get("shard") else None,
            memory_limit=int(config["memory_limit"]) if config.get("memory_limit") else None,
            layout_seed=int(config["layout_seed"]) if config.get("layout_seed") is not None else None,
            loop=str(config.get("loop", "asyncio")),
            command=request.command,
            instructions=bool(config.get("instructions", False)),
            sizes=[int(n) for n in config.get("sizes") or []] if config.get("command") == "size" else (),
            max_wait_ns=max_wait_of(result),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ResultFileError(f"{path}: cannot resume, its config is incomplete ({exc})") from None
    if resumed.mode not in (*MODES, "smoke"):
        raise ResultFileError(f"{path}: cannot resume, unknown mode {resumed.mode!r}")
    differs = []
    named_dirs = [str(d) for d in config.get("scenario_dirs") or []]
    if named_dirs != [str(d) for d in request.scenario_dirs]:
        differs.append(
            f"scenario folders {named_dirs or 'none'} (given: {[str(d) for d in request.scenario_dirs] or 'none'})"
        )
    try:
        named = _pythons(config.get("python"))
    except ResultFileError as exc:
        raise ResultFileError(f"{path}: cannot resume, {exc}") from None
    if named != request.pythons:
        differs.append(
            f"--python {' '.join(named) or 'this interpreter'} (given: {' '.join(request.pythons) or 'none'})"
        )
    if differs:
        raise UsageError(
            f"{path} was made with " + "; ".join(differs),
            hint="a result file never chooses what code runs: name the same --scenarios-dir and --python "
            "on the command line with --resume, if you trust them",
        )
    return resumed


SIZE_THREADS = (4,)
"""A size sweep's default ``--threads``."""
SIZE_CONCURRENCY = (16,)
"""A size sweep's default ``--concurrency``."""
MAX_SIZE = 100_000


def _check_sizes(request: RunRequest, selected: Sequence[tuple[Any, type[Any]]]) -> RunRequest:
    """A size sweep's request, checked: one scenario, sizes from 1, pools that have a size (they
    take ``max_size``); the sweep's own defaults for threads and tasks."""
    from .sizing import sized

    if len(selected) != 1:
        raise UsageError("size sweeps one scenario at a time", hint="poolbench size SCENARIO --pool bounded")
    bad = [n for n in request.sizes if not 1 <= n <= MAX_SIZE]
    if bad:
        raise UsageError(
            f"bad pool size {bad[0]}", hint=f"--sizes takes sizes from 1 to {MAX_SIZE:,}, e.g. 1,2,4,8"
        )
    asynchronous = selected[0][1].is_async()
    pools = list(dict.fromkeys(request.pools))
    check_pools(pools)
    unsized = [p for p in pools if not sized(p, asynchronous)]
    if unsized:
        raise UsageError(
            f"pool {unsized[0]} has no size to sweep: it never makes callers wait",
            hint="size takes pools with a max_size: bounded, or a plugin's (sqlalchemy, psycopg, asyncpg, ...)",
        )
    # The list that does not apply keeps run's default, so the config reads back as a request
    # that passes the same checks (``run --resume`` of an interrupted sweep).
    threads, concurrency = request.threads, request.concurrency
    if asynchronous:
        concurrency = SIZE_CONCURRENCY if tuple(concurrency) == CONCURRENCY else concurrency
    else:
        threads = SIZE_THREADS if tuple(threads) == THREADS else threads
    return replace(request, pools=tuple(pools), sizes=tuple(dict.fromkeys(request.sizes)), threads=threads,
                   concurrency=concurrency)  # fmt: skip


def count_instructions(
    groups: Sequence[Group], result: Result, on_progress: ProgressCallback | None, save: Any, *,
    python: str, timeout: float,
) -> None:  # fmt: skip
    """``run --instructions``: every strategy of each single-thread synchronous group counted
    under Valgrind (:mod:`poolbench.instructions`), after the timed processes (nothing is timed
    beside them). A count that fails is a warning on its cell; the timed figures stand. Ctrl-C
    keeps the counts finished before it."""
    from .instructions import CountInterrupted, Job, PerOp, count_jobs, counted_on

    cells = {c.key: c for c in result.cells}
    jobs: list[tuple[Job, list[Cell]]] = []
    for group in groups:
        if group.threads != 1 or group.concurrency or group.python:
            continue
        keys = (Cell(group.ref.name, pool, 1, dict(group.params)).key for pool in group.pools)
        todo = [c for c in map(cells.get, keys) if c is not None and c.status == "ok" and not c.instructions]
        if todo:
            jobs.append((Job(group.ref, dict(group.params), tuple(c.pool for c in todo)), todo))
    total = sum(len(todo) for _, todo in jobs)
    if not total:
        return

    def counted(done: int) -> None:
        if on_progress:
            on_progress(min(done, total), total, "counting instructions under Valgrind")

    def keep(found: list[dict[str, PerOp | str]], *, interrupted: bool = False) -> None:
        for (_, todo), figures in zip(jobs, found, strict=True):
            for cell in todo:
                got = figures[cell.pool]
                if not isinstance(got, str):
                    cell.instructions = got.to_json()
                elif not interrupted:  # an interrupted count is left for run --resume
                    cell.warnings.append(f"instructions not counted: {got}")
        save()

    counted(0)
    result.metadata["instructions_counted_on"] = counted_on(result.metadata)
    try:
        found = count_jobs([job for job, _ in jobs], python=python, timeout=timeout, on_counted=counted)
    except CountInterrupted as stop:
        keep(stop.found, interrupted=True)
        raise KeyboardInterrupt from None
    keep(found)


@dataclass(frozen=True)
class _Plan:
    """What a session measures and where it saves: the request as resolved."""

    request: RunRequest
    groups: list[Group]
    settings: Settings
    executables: dict[str, str]
    """Label -> executable of a run under several interpreters; empty under one."""
    path: Path
    discovery: Discovery


def _measure_and_save(
    result: Result, planned: _Plan, on_progress: ProgressCallback | None, *, overwrite: bool
) -> RunOutcome:
    request, path = planned.request, planned.path
    python = (request.pythons or (sys.executable,))[0]

    def keep(cells: list[Cell]) -> None:
        result.cells.extend(cells)
        storage.save(result, path, overwrite=True, interim=True)

    with storage.exclusive(path):
        storage.save(result, path, overwrite=overwrite)
        try:
            measure_groups(planned.groups, planned.settings, python=python,
                           executables=planned.executables, timeout=request.timeout,
                           on_progress=on_progress, on_cells=keep,
                           memory_limit=request.memory_limit, existing=list(result.cells),
                           layout_seed=request.layout_seed)  # fmt: skip
            if request.instructions:
                count_instructions(planned.groups, result, on_progress,
                                   lambda: storage.save(result, path, overwrite=True, interim=True),
                                   python=python, timeout=request.timeout)  # fmt: skip
        except KeyboardInterrupt:
            result.metadata["interrupted"] = True
            storage.save(result, path, overwrite=True)
            done = sum(1 for c in result.cells if c.status != "pending")
            raise Interrupted(
                f"interrupted: {done} finished cell(s) saved in {path} (marked incomplete)",
                hint=f"poolbench run --resume {path} measures the rest",
            ) from None
        result.complete = True
        result.metadata["date_finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        storage.save(result, path, overwrite=True)
    return RunOutcome(result, path, planned.discovery)
