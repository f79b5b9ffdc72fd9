"""``poolbench run`` as a library call: discover, plan, measure, save as it goes.

The result file is rewritten (atomically) after every group, marked incomplete until the last
one, so a crash, Ctrl-C or SIGTERM loses at most the group being measured.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from . import __version__, env, storage
from .discovery import Discovery, discover
from .errors import Interrupted, ResultFileError, UsageError
from .merge import shard_of
from .params import split_assignments
from .result import Cell, Result
from .runner import Group, ProgressCallback, check_python, measure_groups, plan
from .settings import MODES, SMOKE, Settings


@dataclass(frozen=True)
class RunRequest:
    scenarios: Sequence[str] = ()
    pools: Sequence[str] = ("none", "sync")
    threads: Sequence[int] = (1, 2, 4)
    params: Sequence[str] = ()
    mode: str = "default"
    out: Path | None = None
    results_dir: Path = Path("results")
    force: bool = False
    scenario_dirs: Sequence[Path] = ()
    python: str | None = None
    timeout: float = 300.0
    label: str | None = None
    shard: tuple[int, int] | None = None
    memory_limit: int | None = None
    resume: Path | None = None


@dataclass
class RunOutcome:
    result: Result
    path: Path
    discovery: Discovery
    cells: list[Cell] = field(default_factory=list)


class _Terminated(Exception):
    pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


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
        request = resume_request(existing, request.resume)
    found = discovery or discover(request.scenario_dirs)
    names = list(request.scenarios) or found.builtins()
    selected = found.lookup(names)
    groups = plan(selected, request.pools, request.threads, split_assignments(request.params))
    if request.shard is not None:
        groups = [groups[i] for i in shard_of(groups, request.shard)]
    settings = SMOKE if request.mode == "smoke" else MODES[request.mode]
    python = request.python or sys.executable
    interpreter = check_python(python) if request.python else env.interpreter()
    label = request.label or ("-".join(dict.fromkeys(names)) if request.scenarios else "builtins")
    path = request.out or storage.default_path(request.results_dir, label)
    if existing is not None:
        existing.metadata["resumed"] = datetime.now(UTC).isoformat(timespec="seconds")
        existing.metadata.pop("interrupted", None)
        return _measure_and_save(
            existing, groups, settings, request, python, path, found, on_progress, overwrite=True
        )
    started = datetime.now(UTC).isoformat(timespec="seconds")
    result = Result(
        metadata={
            "poolbench_version": __version__,
            "date_started": started,
            "command": " ".join(["poolbench", *sys.argv[1:]]) if sys.argv else "poolbench",
            **interpreter,
            **env.machine(),
        },
        config={
            "mode": request.mode,
            "settings": settings.to_json(),
            "scenarios": [ref.to_json() for ref, _ in selected],
            "pools": list(groups[0].pools) if groups else [],
            "threads": list(dict.fromkeys(request.threads)),
            "params": list(request.params),
            "timeout": request.timeout,
            "shard": list(request.shard) if request.shard else None,
            "python": request.python,
            "scenario_dirs": [str(d) for d in request.scenario_dirs],
            "memory_limit": request.memory_limit,
        },
    )
    return _measure_and_save(
        result, groups, settings, request, python, path, found, on_progress, overwrite=request.force
    )


def resume_request(result: Result, path: Path) -> RunRequest:
    """The request that made ``result``, read back from its config, writing to ``path``."""
    config = result.config
    try:
        return RunRequest(
            scenarios=[s["name"] for s in config["scenarios"]],
            pools=list(config["pools"]),
            threads=[int(t) for t in config["threads"]],
            params=list(config.get("params", [])),
            mode=str(config["mode"]),
            out=path,
            force=True,
            scenario_dirs=[Path(d) for d in config.get("scenario_dirs", [])],
            python=config.get("python"),
            timeout=float(config.get("timeout", 300.0)),
            shard=tuple(config["shard"]) if config.get("shard") else None,
            memory_limit=config.get("memory_limit"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultFileError(f"{path}: cannot resume, its config is incomplete ({exc})") from None


def _measure_and_save(
    result: Result,
    groups: list[Group],
    settings: Settings,
    request: RunRequest,
    python: str,
    path: Path,
    found: Discovery,
    on_progress: ProgressCallback | None,
    *,
    overwrite: bool,
) -> RunOutcome:
    outcome = RunOutcome(result, path, found)

    def keep(cells: list[Cell]) -> None:
        result.cells.extend(cells)
        storage.save(result, path, overwrite=True)

    storage.save(result, path, overwrite=overwrite)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        measure_groups(groups, settings, python=python, timeout=request.timeout,
                       on_progress=on_progress, on_cells=keep,
                       memory_limit=request.memory_limit, existing=list(result.cells))  # fmt: skip
    except (KeyboardInterrupt, _Terminated):
        result.metadata["interrupted"] = True
        storage.save(result, path, overwrite=True)
        done = sum(1 for c in result.cells if c.status != "pending")
        raise Interrupted(
            f"interrupted: {done} finished cell(s) saved in {path} (marked incomplete)",
            hint=f"poolbench run --resume {path} measures the rest",
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    result.complete = True
    result.metadata["date_finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    storage.save(result, path, overwrite=True)
    return outcome
