"""The parent side of a run: plan the matrix, spawn worker processes, collect cells.

Each group (scenario, params, threads) is measured as *pairs*: ``none`` and one pool in a process,
``settings.processes`` fresh processes per pair (so no pool's retained objects share a heap with
another pool's cells). Processes run one at a time (on a 2-core machine, parallel workers would
measure each other), in rounds over the whole matrix: round 1 runs every pair's first process,
round 2 every pair's second, and so on. A slow minute on a shared machine then touches one process
of many cells instead of every process of one cell, which the gate would read as a change.

A worker that raises, dies or outlives ``timeout`` fails its pair's cells with the cause; the rest
still run.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout
from .discovery import ScenarioRef
from .errors import UsageError
from .params import format_params, resolve
from .pools import STRATEGIES, plugins
from .result import AllocStats, Cell, GcStats, MemoryStats, Run
from .scenario import Scenario
from .settings import Settings
from .stats import process_modes


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


_KILLED = "the worker was killed by"


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"{_KILLED} {signal.Signals(-code).name}"
        except ValueError:
            return f"{_KILLED} signal {-code}"
    return f"the worker exited with code {code}"


def worker_command(python: str) -> tuple[list[str], dict[str, str]]:
    """How to start a worker that imports the same poolbench as this process.

    ``-P`` keeps the current directory off the worker's path: run from a checkout, ``-m`` would
    otherwise import the checkout's source instead of the installed package. With this
    interpreter, the worker's path starts with the folder this poolbench was imported from; another
    interpreter (``--python``) uses the poolbench installed in it.
    """
    env = dict(os.environ)
    if python != sys.executable:
        return [python, "-P", "-m", "poolbench.worker"], env
    home = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    return [sys.executable, "-P", "-m", "poolbench.worker"], env


def run_worker(python: str, spec: dict[str, Any], timeout: float) -> dict[str, Any] | WorkerFailure:
    """Run one worker process; its answer, or why there is none."""
    command, env = worker_command(python)
    env[layout.PAD_ENV] = layout.environment_padding(int(spec.get("layout_seed", 0)))
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


@dataclass
class _Pair:
    """``none`` and at most one pool of a group, measured together in each of their processes."""

    group: Group
    pools: tuple[str, ...]  # ("none",) or ("none", pool)
    cells: dict[str, Cell]  # the group's cells by pool (shared by the group's pairs)
    done: int = 0
    wanted: int = 0
    loops: dict[str, int] | None = None
    finished: bool = False
    retried: bool = False

    @property
    def pooled(self) -> str:
        return self.pools[-1]

    @property
    def label(self) -> str:
        shown = "" if len(self.pools) == 1 else f" pool={self.pooled}"
        return f"{self.group.label}{shown}"

    def spec(self, settings: Settings, memory_limit: int | None, seed: int) -> dict[str, Any]:
        return {
            "scenario": self.group.ref.to_json(),
            "params": self.group.params,
            "threads": self.group.threads,
            "pools": list(self.pools),
            "settings": settings.to_json(),
            "memory_limit": memory_limit,
            "loops": self.loops,
            "count_allocs": self.done < settings.count_processes,
            "layout_seed": seed,
        }

    def needs_more(self) -> bool:
        """Whether the pooled cell's processes split into two modes (extra processes may settle it)."""
        cell = self.cells[self.pooled]
        if len(self.pools) == 1 or cell.status != "ok":
            return False
        ratios = [r.ratios for r in cell.runs if r.ratios]
        return len(ratios) >= 2 and process_modes(ratios).split


def _pairs_of(group: Group, cells: dict[str, Cell], settings: Settings) -> list[_Pair]:
    pooled = [p for p in group.pools if p != "none"]
    combos: list[tuple[str, ...]] = [("none", p) for p in pooled] or [("none",)]
    pairs = []
    for combo in combos:
        pair = _Pair(group, combo, cells, wanted=settings.processes)
        owner = cells[combo[-1]]
        mine = owner.runs
        pair.done = len(mine)
        if mine:
            first = mine[0]
            none_run = next(
                (r for r in cells["none"].runs if r.partner == combo[-1] or len(combo) == 1), None
            )
            if none_run is not None and first.reference_loops:
                pair.loops = {
                    combo[-1]: first.loops,
                    "none": none_run.loops,
                    "reference": first.reference_loops,
                }
        pair.finished = any(cells[p].status in ("failed", "skipped") for p in combo[1:] or combo)
        pairs.append(pair)
    return pairs


def measure_groups(
    groups: Sequence[Group],
    settings: Settings,
    *,
    python: str = sys.executable,
    timeout: float,
    on_progress: ProgressCallback | None = None,
    on_cells: Callable[[list[Cell]], None] | None = None,
    memory_limit: int | None = None,
    existing: Sequence[Cell] = (),
) -> list[Cell]:
    """Measure every group, in rounds of one process per pair.

    ``existing`` cells (an interrupted run's) are topped up to ``settings.processes`` processes
    per pair rather than measured again. ``on_cells`` gets the cells each time a process added to
    them (new cells first appear there), so a caller can save as the run goes.
    """
    known = {c.key: c for c in existing}
    all_cells: list[Cell] = []
    pairs: list[_Pair] = []
    for group in groups:
        cells = {}
        for pool in group.pools:
            cell = known.get((group.ref.name, pool, group.threads, format_params(group.params)))
            if cell is None:
                cell = Cell(group.ref.name, pool, group.threads, dict(group.params), status="pending")
                all_cells.append(cell)
            cells[pool] = cell
        pairs.extend(_pairs_of(group, cells, settings))
    if on_cells and all_cells:
        on_cells(all_cells)
    total = sum(max(0, p.wanted - p.done) for p in pairs if not p.finished)
    count = [0]
    rng = random.SystemRandom()

    def one(pair: _Pair) -> None:
        if on_progress:
            on_progress(count[0], total, f"{pair.label} (process {pair.done + 1}/{pair.wanted})")
        seed = rng.randrange(1 << 31)
        answer = run_worker(python, pair.spec(settings, memory_limit, seed), timeout)
        if isinstance(answer, WorkerFailure) and answer.message.startswith(_KILLED) and not pair.retried:
            # One retry for a worker killed by a signal: a rare crash inside the tracing pass
            # (seen once in ~500 processes) must not fail a cell, and so a gate; a scenario that
            # crashes every time still fails.
            pair.retried = True
            for pool in pair.pools:
                pair.cells[pool].warnings.append(f"a worker process {answer.message[11:]}; it was run again")
            seed = rng.randrange(1 << 31)
            answer = run_worker(python, pair.spec(settings, memory_limit, seed), timeout)
        count[0] += 1
        if isinstance(answer, WorkerFailure):
            _fail(pair, answer)
        else:
            _add(pair, answer, seed)
            if pair.loops is None:
                mine = answer["pools"]
                pair.loops = {name: mine[name]["loops"] for name in pair.pools}
                pair.loops["reference"] = mine[pair.pools[0]]["reference_loops"]
            pair.done += 1
        if on_cells:
            on_cells([])

    def rounds(active: Callable[[_Pair], bool]) -> None:
        while True:
            todo = [p for p in pairs if not p.finished and p.done < p.wanted and active(p)]
            if not todo:
                return
            for pair in todo:
                if not pair.finished:
                    one(pair)

    rounds(lambda p: True)
    unsettled = [p for p in pairs if not p.finished and settings.extra_processes and p.needs_more()]
    for pair in unsettled:
        pair.wanted += settings.extra_processes
        total += settings.extra_processes
    rounds(lambda p: p in unsettled)
    if on_progress:
        on_progress(count[0], max(total, count[0]), "done")
    return all_cells


def _fail(pair: _Pair, failure: WorkerFailure) -> None:
    """A failed process fails its pair's pooled cell, and ``none`` too unless another pair of the
    group measured it; no more processes are spent on the pair."""
    pair.finished = True
    owners = [pair.pooled] if len(pair.pools) > 1 else ["none"]
    if len(pair.pools) > 1 and not pair.cells["none"].runs:
        owners.append("none")
    for pool in owners:
        cell = pair.cells[pool]
        cell.status = "skipped" if failure.skipped else "failed"
        cell.error = failure.message
        cell.runs.clear()


def _add(pair: _Pair, answer: dict[str, Any], seed: int) -> None:
    """Add one process's answer to the pair's cells."""
    pools = answer["pools"]
    base = pools["none"]["values"]
    for pool in pair.pools:
        cell = pair.cells[pool]
        if cell.status in ("failed", "skipped") and pool != "none":
            continue
        cell.status, cell.error = "ok", None  # none: another pair may have failed first
        mine = pools[pool]
        partner = next((p for p in pair.pools if p != pool), None)
        ratios = (
            [b / v for b, v in zip(base, mine["values"], strict=False) if v > 0] if pool != "none" else []
        )
        allocs = mine.get("allocs")
        ops = allocs["ops"] if allocs else 0
        gc = mine["gc"]
        memory = gc.get("memory") or {}
        cell.runs.append(
            Run(
                mine["loops"],
                mine["values"],
                mine["warmups"],
                ratios,
                mine.get("reference", []),
                allocs["allocations"] / ops if ops else None,
                allocs["bytes"] / ops if ops else None,
                reference_loops=mine.get("reference_loops"),
                layout_seed=seed,
                partner=partner,
                hit_rate=mine.get("hit_rate"),
                peak_rss_bytes=memory.get("peak_bytes"),
                rss_added_bytes=memory.get("added_bytes"),
            )
        )
        cell.latency_ns.extend(mine["latency"])
        if cell.gc is None:
            cell.gc = GcStats()
        cell.gc.add(GcStats(gc["ops"], gc["collections"], gc["pause_total_ns"], gc["pause_max_ns"]))
        if allocs:
            if cell.allocs is None:
                cell.allocs = AllocStats()
            cell.allocs.add(
                AllocStats(allocs["ops"], allocs["allocations"], allocs["bytes"], allocs["peak_bytes"])
            )
            for warning in allocs.get("warnings", []):
                if warning not in cell.warnings:
                    cell.warnings.append(warning)
        if answer.get("not_counted") and answer["not_counted"] not in cell.warnings:
            cell.warnings.append(answer["not_counted"])
        hit_rates = [r.hit_rate for r in cell.runs if r.hit_rate is not None]
        cell.hit_rate = statistics.fmean(hit_rates) if hit_rates else None
        peaks = [r.peak_rss_bytes for r in cell.runs if r.peak_rss_bytes is not None]
        added = [r.rss_added_bytes for r in cell.runs if r.rss_added_bytes is not None]
        if peaks:
            cell.peak_rss_bytes = int(statistics.median(peaks))
            cell.memory = MemoryStats(
                int(statistics.median(peaks)),
                int(statistics.median(added)) if added else 0,
                bool(memory.get("peak_reset", True)) and (cell.memory is None or cell.memory.peak_reset),
            )
        if "pool_stats" in mine:
            cell.pool_stats = mine["pool_stats"]
