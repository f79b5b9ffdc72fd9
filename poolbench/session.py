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
from typing import Any

from . import __version__, env, storage
from .discovery import Discovery, discover
from .errors import Interrupted, ResultExistsError
from .measure import MODES, SMOKE
from .merge import shard_of
from .params import split_assignments
from .result import Cell, Result
from .runner import ProgressCallback, check_python, measure_groups, plan


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
    if path.exists() and not request.force:
        raise ResultExistsError(
            f"{path} exists", hint="pass --force to overwrite it, or --out to name another file"
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
        },
    )
    outcome = RunOutcome(result, path, found)

    def keep(cells: list[Cell]) -> None:
        result.cells.extend(cells)
        storage.save(result, path, overwrite=True)

    storage.save(result, path, overwrite=request.force)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        measure_groups(groups, settings, python=python, timeout=request.timeout,
                       on_progress=on_progress, on_cells=keep)  # fmt: skip
    except (KeyboardInterrupt, _Terminated):
        result.metadata["interrupted"] = True
        storage.save(result, path, overwrite=True)
        done = len(result.cells)
        raise Interrupted(
            f"interrupted: {done} finished cell(s) saved in {path} (marked incomplete)",
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    result.complete = True
    result.metadata["date_finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    storage.save(result, path, overwrite=True)
    return outcome


def describe_interpreter(metadata: dict[str, Any]) -> str:
    gil = "" if metadata.get("gil_enabled", True) else ", free-threaded"
    return f"Python {metadata.get('python_version', '?')}{gil} on {metadata.get('cpu_model', '?')}"
