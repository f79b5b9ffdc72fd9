"""The parent side of a run: spawn worker processes for a planned matrix, collect their cells.

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

import random
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .params import format_params
from .planning import Group
from .protocol import REFERENCE, Answer, MeasureJob
from .result import AllocStats, Cell, GcStats, MemoryStats, Run
from .settings import Settings
from .spawn import KILLED, WorkerFailure, run_worker
from .stats import process_modes

FREE_THREADED_GC = (
    "GC figures: the free-threaded collector runs far less often than the GIL build's, so 0.00 "
    "collections per 1k ops there does not mean no GC work"
)
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

    def job(self, settings: Settings, memory_limit: int | None, seed: int) -> MeasureJob:
        return MeasureJob(
            scenario=self.group.ref,
            params=self.group.params,
            threads=self.group.threads,
            pools=self.pools,
            settings=settings,
            layout_seed=seed,
            count_allocs=self.done < settings.count_processes,
            loops=self.loops,
            memory_limit=memory_limit,
        )

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
                    REFERENCE: first.reference_loops,
                }
        pair.finished = any(cells[p].status in ("failed", "skipped") for p in combo[1:] or combo)
        pairs.append(pair)
    return pairs


def measure_groups(
    groups: Sequence[Group],
    settings: Settings,
    *,
    python: str = sys.executable,
    executables: Mapping[str, str] | None = None,
    timeout: float,
    on_progress: ProgressCallback | None = None,
    on_cells: Callable[[list[Cell]], None] | None = None,
    memory_limit: int | None = None,
    existing: Sequence[Cell] = (),
) -> list[Cell]:
    """Measure every group, in rounds of one process per pair.

    ``existing`` cells (an interrupted run's) are topped up to ``settings.processes`` processes
    per pair rather than measured again. ``on_cells`` gets the cells each time a process added to
    them (new cells first appear there), so a caller can save as the run goes. A group with an
    interpreter label (``Group.python``) runs under ``executables[label]``, others under ``python``.
    """
    known = {c.key: c for c in existing}
    all_cells: list[Cell] = []
    pairs: list[_Pair] = []
    for group in groups:
        cells = {}
        for pool in group.pools:
            key = (group.ref.name, pool, group.threads, format_params(group.params), group.python)
            cell = known.get(key)
            if cell is None:
                cell = Cell(group.ref.name, pool, group.threads, dict(group.params), status="pending",
                            python=group.python)  # fmt: skip
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
        executable = executables[pair.group.python] if executables and pair.group.python else python
        answer = run_worker(executable, pair.job(settings, memory_limit, seed), timeout)
        if isinstance(answer, WorkerFailure) and answer.message.startswith(KILLED) and not pair.retried:
            # One retry for a worker killed by a signal: a rare crash inside the tracing pass
            # (seen once in ~500 processes) must not fail a cell, and so a gate; a scenario that
            # crashes every time still fails.
            pair.retried = True
            for pool in pair.pools:
                pair.cells[pool].warnings.append(f"a worker process {answer.message[11:]}; it was run again")
            seed = rng.randrange(1 << 31)
            answer = run_worker(executable, pair.job(settings, memory_limit, seed), timeout)
        count[0] += 1
        if isinstance(answer, WorkerFailure):
            _fail(pair, answer)
        else:
            _add(pair, answer, seed)
            if pair.loops is None:
                mine = answer.pools
                pair.loops = {name: mine[name].loops for name in pair.pools}
                pair.loops[REFERENCE] = mine[pair.pools[0]].reference_loops
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


def _add(pair: _Pair, answer: Answer, seed: int) -> None:
    """Add one process's answer to the pair's cells."""
    pools = answer.pools
    base = pools["none"].values
    for pool in pair.pools:
        cell = pair.cells[pool]
        if cell.status in ("failed", "skipped") and pool != "none":
            continue
        cell.status, cell.error = "ok", None  # none: another pair may have failed first
        mine = pools[pool]
        partner = next((p for p in pair.pools if p != pool), None)
        ratios = [b / v for b, v in zip(base, mine.values, strict=False) if v > 0] if pool != "none" else []
        allocs = mine.allocs
        gc = mine.gc
        cell.runs.append(
            Run(
                mine.loops,
                mine.values,
                mine.warmups,
                ratios,
                mine.reference,
                allocs.allocations / allocs.ops if allocs and allocs.ops else None,
                allocs.bytes / allocs.ops if allocs and allocs.ops else None,
                reference_loops=mine.reference_loops,
                layout_seed=seed,
                partner=partner,
                hit_rate=mine.hit_rate,
                peak_rss_bytes=gc.peak_bytes,
                rss_added_bytes=gc.added_bytes,
            )
        )
        cell.latency_ns.extend(mine.latency)
        if cell.gc is None:
            cell.gc = GcStats()
        cell.gc.add(GcStats(gc.ops, gc.collections, gc.pause_total_ns, gc.pause_max_ns))
        if allocs:
            if cell.allocs is None:
                cell.allocs = AllocStats()
            cell.allocs.add(AllocStats(allocs.ops, allocs.allocations, allocs.bytes, allocs.peak_bytes))
        notes = [*(allocs.warnings if allocs else []), *([answer.not_counted] if answer.not_counted else [])]
        if answer.interpreter.get("gil_enabled") is False:
            notes.append(FREE_THREADED_GC)
        for warning in notes:
            if warning not in cell.warnings:
                cell.warnings.append(warning)
        hit_rates = [r.hit_rate for r in cell.runs if r.hit_rate is not None]
        cell.hit_rate = statistics.fmean(hit_rates) if hit_rates else None
        peaks = [r.peak_rss_bytes for r in cell.runs if r.peak_rss_bytes is not None]
        added = [r.rss_added_bytes for r in cell.runs if r.rss_added_bytes is not None]
        if peaks:
            cell.peak_rss_bytes = int(statistics.median(peaks))
            cell.memory = MemoryStats(
                int(statistics.median(peaks)),
                int(statistics.median(added)) if added else 0,
                gc.peak_reset and (cell.memory is None or cell.memory.peak_reset),
            )
        if mine.pool_stats is not None:
            cell.pool_stats = mine.pool_stats
