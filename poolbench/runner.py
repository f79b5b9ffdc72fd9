"""The parent side of a run: plan the matrix, spawn a worker per process, collect cells.

Each group (scenario, params, threads) runs in ``settings.processes`` fresh worker processes, one
after the other (on a 2-core machine, parallel workers would measure each other). A worker that
raises, dies or outlives ``timeout`` fails its group's cells with the cause; the rest still run.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .discovery import ScenarioRef
from .errors import UsageError
from .measure import Settings
from .params import resolve
from .pools import STRATEGIES, plugins
from .result import AllocStats, Cell, GcStats, Run
from .scenario import Scenario


@dataclass(frozen=True)
class Group:
    """The cells one worker measures together: every pool of one (scenario, params, threads)."""

    ref: ScenarioRef
    params: dict[str, Any]
    threads: int
    pools: tuple[str, ...]

    @property
    def label(self) -> str:
        shown = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.ref.name} threads={self.threads} {shown}"


def check_pools(pools: Sequence[str]) -> tuple[str, ...]:
    """Known pool names, ``none`` first (always measured: every speedup is taken against it)."""
    unknown = [p for p in pools if p not in STRATEGIES]
    if unknown:
        found, problems = plugins()
        unknown = [p for p in unknown if p not in found]
        if unknown:
            hint = f"known: {', '.join([*STRATEGIES, *found])}"
            broken = [f"{name} ({error})" for name, error in problems if name in unknown]
            raise UsageError(
                f"unknown pool strategy {', '.join(map(repr, unknown))}",
                hint=hint + ("; plugins that failed to load: " + "; ".join(broken) if broken else ""),
            )
    return ("none", *(p for p in dict.fromkeys(pools) if p != "none"))


def check_threads(threads: Sequence[int]) -> tuple[int, ...]:
    bad = [t for t in threads if t < 1 or t > 1024]
    if bad:
        raise UsageError(
            f"bad thread count {bad[0]}", hint="--threads takes counts from 1 to 1024, e.g. 1,2,4"
        )
    return tuple(dict.fromkeys(threads))


def plan(
    scenarios: Sequence[tuple[ScenarioRef, type[Scenario]]],
    pools: Sequence[str],
    threads: Sequence[int],
    grid: Mapping[str, Sequence[str]],
) -> list[Group]:
    """The matrix scenario × parameter values × threads; every ``-p`` key must fit a scenario."""
    pools_ = check_pools(pools)
    threads_ = check_threads(threads)
    for key in grid:
        if not any(key in cls.default_params() for _, cls in scenarios):
            names = ", ".join(ref.name for ref, _ in scenarios)
            raise UsageError(f"no selected scenario has a parameter {key!r} (selected: {names})",
                             hint="`poolbench list` shows each scenario's parameters")  # fmt: skip
    groups: list[Group] = []
    for ref, cls in scenarios:
        keys = [k for k in grid if k in cls.default_params()]
        for combo in itertools.product(*(grid[k] for k in keys)):
            params = resolve(
                ref.name, cls.default_params(), cls.choices, dict(zip(keys, combo, strict=False))
            )
            groups.extend(Group(ref, params, t, pools_) for t in threads_)
    return groups


@dataclass(frozen=True)
class WorkerFailure:
    message: str
    detail: str = ""
    skipped: bool = False


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"the worker was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the worker was killed by signal {-code}"
    return f"the worker exited with code {code}"


def worker_command(python: str) -> tuple[list[str], dict[str, str] | None]:
    """How to start a worker that imports the same poolbench as this process.

    ``-P`` keeps the current directory off the worker's path: run from a checkout, ``-m`` would
    otherwise import the checkout's source instead of the installed package. With this
    interpreter, the worker's path starts with the folder this poolbench was imported from; another
    interpreter (``--python``) uses the poolbench installed in it.
    """
    if python != sys.executable:
        return [python, "-P", "-m", "poolbench.worker"], None
    home = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    return [sys.executable, "-P", "-m", "poolbench.worker"], env


def run_worker(python: str, spec: dict[str, Any], timeout: float) -> dict[str, Any] | WorkerFailure:
    """Run one worker process; its answer, or why there is none."""
    command, env = worker_command(python)
    with tempfile.TemporaryDirectory(prefix="poolbench-worker-") as tmp:
        out = Path(tmp) / "answer.json"
        spec = {**spec, "out": str(out)}
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the parent only; it ends the workers
            env=env,
            text=True,
        )
        try:
            _, stderr = proc.communicate(json.dumps(spec), timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return WorkerFailure(f"timed out after {timeout:g} s (--timeout)")
        except BaseException:
            _kill(proc)
            raise
        if out.exists():
            try:
                answer: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
            except ValueError:
                return WorkerFailure("the worker wrote a corrupt answer", stderr[-2000:])
            if answer.get("ok"):
                return answer
            if "skip" in answer:
                return WorkerFailure(str(answer["skip"]), skipped=True)
            return WorkerFailure(str(answer.get("error")), str(answer.get("traceback", "")))
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        return WorkerFailure(_describe_exit(proc.returncode), tail)


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def check_python(python: str) -> dict[str, Any]:
    """The interpreter ``--python`` names must exist and import poolbench's worker."""
    probe = "import json, poolbench.env as e; print(json.dumps(e.interpreter()))"
    try:
        done = subprocess.run([python, "-P", "-c", probe], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run --python {python}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(
            f"--python {python} cannot import poolbench ({last})",
            hint=f"install poolbench into that interpreter: {python} -m pip install poolbench",
        )
    info: dict[str, Any] = json.loads(done.stdout)
    return info


ProgressCallback = Callable[[int, int, str], None]


def measure_groups(
    groups: Sequence[Group],
    settings: Settings,
    *,
    python: str = sys.executable,
    timeout: float,
    on_progress: ProgressCallback | None = None,
    on_cells: Callable[[list[Cell]], None] | None = None,
    memory_limit: int | None = None,
) -> list[Cell]:
    """Measure every group; ``on_cells`` gets each group's cells as soon as they exist."""
    cells: list[Cell] = []
    total = len(groups) * settings.processes
    done = 0
    for group in groups:
        spec = {
            "scenario": group.ref.to_json(),
            "params": group.params,
            "threads": group.threads,
            "pools": list(group.pools),
            "settings": settings.to_json(),
            "memory_limit": memory_limit,
        }
        answers: list[dict[str, Any]] = []
        failure: WorkerFailure | None = None
        for process in range(settings.processes):
            if on_progress:
                on_progress(done, total, f"{group.label} (process {process + 1}/{settings.processes})")
            answer = run_worker(python, spec, timeout)
            done += 1
            if isinstance(answer, WorkerFailure):
                failure = answer
                done += settings.processes - process - 1
                break
            answers.append(answer)
        new = cells_of(group, answers, failure)
        cells.extend(new)
        if on_cells:
            on_cells(new)
    if on_progress:
        on_progress(done, total, "done")
    return cells


def cells_of(group: Group, answers: list[dict[str, Any]], failure: WorkerFailure | None) -> list[Cell]:
    """Merge the answers of a group's processes into one cell per pool."""
    cells = []
    for pool in group.pools:
        cell = Cell(group.ref.name, pool, group.threads, dict(group.params))
        if failure is not None:
            cell.status = "skipped" if failure.skipped else "failed"
            cell.error = failure.message
            cells.append(cell)
            continue
        hit_rates = []
        for answer in answers:
            mine = answer["pools"][pool]
            base = answer["pools"]["none"]["values"]
            ratios = (
                [b / v for b, v in zip(base, mine["values"], strict=False) if v > 0] if pool != "none" else []
            )
            allocs = mine.get("allocs") or {}
            ops = allocs.get("ops") or 0
            cell.runs.append(
                Run(
                    mine["loops"],
                    mine["values"],
                    mine["warmups"],
                    ratios,
                    mine.get("reference", []),
                    allocs["allocations"] / ops if ops else None,
                    allocs["bytes"] / ops if ops else None,
                )
            )
            cell.latency_ns.extend(mine["latency"])
            gc = mine["gc"]
            stats = GcStats(gc["ops"], gc["collections"], gc["pause_total_ns"], gc["pause_max_ns"])
            if cell.gc is None:
                cell.gc = GcStats()
            cell.gc.add(stats)
            cell.peak_rss_bytes = max(cell.peak_rss_bytes or 0, gc["peak_rss_bytes"])
            if mine.get("allocs"):
                if cell.allocs is None:
                    cell.allocs = AllocStats()
                cell.allocs.add(AllocStats(**mine["allocs"]))
            if "hit_rate" in mine:
                hit_rates.append(mine["hit_rate"])
            cell.pool_stats = mine.get("pool_stats")
        if hit_rates:
            cell.hit_rate = sum(hit_rates) / len(hit_rates)
        cells.append(cell)
    return cells
