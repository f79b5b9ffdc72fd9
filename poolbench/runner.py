"""The parent side of a run: spawn worker processes for a planned matrix, collect their cells.

Each group (scenario, params, threads) is measured as *pairs*: ``none`` and one pool in a process,
several fresh processes per pair (so no pool's retained objects share a heap with another pool's
cells). Processes run one at a time (on a 2-core machine, parallel workers would measure each
other), in rounds over the whole matrix: round 1 runs every pair's first process, round 2 every
open pair's next, and so on. A slow minute on a shared machine then touches one process of many
cells instead of every process of one cell, which the gate would read as a change.

Processes go where a verdict is still open: every pair gets ``settings.min_processes``, then one
more per round while its verdict is not settled (:func:`poolbench.verdict.settled`), up to
``settings.max_processes``. The intervals account for those looks (:class:`~poolbench.verdict.Looks`).
Workers are forked from a template process, renewed every round (:class:`~poolbench.spawn.Templates`).

A worker that raises, dies or outlives ``timeout`` fails its pair's cells with the cause; the rest
still run.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .planning import Group
from .protocol import REFERENCE, Answer, CountJob, MeasureJob
from .result import AllocStats, Cell, Count, GcStats, MemoryStats, Run
from .settings import Settings
from .spawn import KILLED, Templates, WorkerFailure, run_worker, run_workers
from .verdict import looks_of, settled, speedup

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
    spent: float = 0.0
    """Wall seconds its timed processes took in this session."""
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

    @property
    def counter(self) -> Cell:
        """The cell whose counts say how many counting processes the pair has had."""
        return self.cells[self.pooled]

    def job(self, settings: Settings, memory_limit: int | None, seed: int) -> MeasureJob:
        return MeasureJob(
            scenario=self.group.ref,
            params=self.group.params,
            threads=self.group.threads,
            pools=self.pools,
            settings=settings,
            layout_seed=seed,
            detail=self.done < settings.detail_processes,
            # Zeros, not nothing, before the loops are known: the job's shape (and so what the
            # worker allocates reading it) is then the same in every process of the pair.
            loops=self.loops or {**dict.fromkeys(self.pools, 0), REFERENCE: 0},
            memory_limit=memory_limit,
            concurrency=self.group.concurrency,
        )

    def open(self, settings: Settings) -> bool:
        """Whether the pair gets another process: below the minimum, or unsettled within the budget."""
        if self.finished or self.done >= settings.max_processes:
            return False
        if self.done < settings.min_processes:
            return True
        if self.spent >= settings.max_seconds:
            return False
        cell = self.cells[self.pooled]
        if len(self.pools) == 1 or cell.status != "ok" or not cell.ratios_by_run:
            return False
        return not settled(speedup(cell.ratios_by_run, looks_of(settings)))


def _pairs_of(group: Group, cells: dict[str, Cell]) -> list[_Pair]:
    pooled = [p for p in group.pools if p != "none"]
    combos: list[tuple[str, ...]] = [("none", p) for p in pooled] or [("none",)]
    if "none" not in group.pools:  # a size sweep's: one pool at one size, alone in its processes
        combos = [(p,) for p in pooled]
    pairs = []
    for combo in combos:
        pair = _Pair(group, combo, cells)
        owner = cells[combo[-1]]
        mine = owner.runs
        pair.done = len(mine)
        if mine:
            first = mine[0]
            none_run = next(
                (r for r in cells[combo[0]].runs if r.partner == combo[-1] or len(combo) == 1), None
            )
            if none_run is not None and first.reference_loops:
                pair.loops = {
                    combo[-1]: first.loops,
                    combo[0]: none_run.loops,
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
    layout_seed: int | None = None,
    templates: bool | None = None,
) -> list[Cell]:
    """Measure every group, in rounds of one process per open pair.

    ``existing`` cells (an interrupted run's) are topped up rather than measured again.
    ``on_cells`` gets the cells each time a process added to them (new cells first appear
    there), so a caller can save as the run goes. A group with an interpreter label
    (``Group.python``) runs under ``executables[label]``, others under ``python``. Every process
    shifts its heap by ``layout_seed`` when given (to reproduce a mode), by a fresh random seed
    otherwise; ``templates`` forks workers from template processes (default: where that works).
    """
    all_cells, pairs = _cells_of(groups, existing)
    if on_cells and all_cells:
        on_cells(all_cells)
    rounds = _Rounds(settings, python, executables or {}, timeout, on_progress, on_cells, memory_limit,
                     layout_seed, templates)  # fmt: skip
    # Two counting processes at least: a count that moves between processes (sqlite's connect at
    # one thread by 0.6 per op, with threads by up to 0.5) is gated with that spread; with one per
    # pair, two identical quick runs of the default matrix failed the gate in 2 compares of 4.
    counting = [p for p in pairs for _ in range(max(0, settings.count_processes - len(p.counter.counts)))]
    with Templates(enabled=templates) as workers:
        while True:
            todo = [p for p in pairs if p.open(settings)]
            if not todo:
                break
            workers.renew()  # each process of a pair comes from a template of its own
            # What is left as far as is known now: this round, every pair's minimum, the counting.
            total = rounds.count + len(todo) + sum(max(0, settings.min_processes - p.done - 1) for p in todo)
            for pair in todo:
                if not pair.finished:
                    rounds.timed(pair, workers, total + len(counting))
    rounds.counted(counting)
    if on_progress:
        on_progress(rounds.count, rounds.count, "done")
    return all_cells


def _cells_of(groups: Sequence[Group], existing: Sequence[Cell]) -> tuple[list[Cell], list[_Pair]]:
    """The new cells of ``groups`` (those not in ``existing``), and every group's pairs."""
    known = {c.key: c for c in existing}
    all_cells: list[Cell] = []
    pairs: list[_Pair] = []
    for group in groups:
        cells = {}
        for pool in group.pools:
            cell = Cell(group.ref.name, pool, group.threads, dict(group.params), status="pending",
                        python=group.python, concurrency=group.concurrency)  # fmt: skip
            if cell.key in known:
                cell = known[cell.key]
            else:
                all_cells.append(cell)
            cells[pool] = cell
        pairs.extend(_pairs_of(group, cells))
    return all_cells, pairs


@dataclass
class _Rounds:
    """What every process of a session shares: where it runs, its limits, whom it tells."""

    settings: Settings
    python: str
    executables: Mapping[str, str]
    timeout: float
    on_progress: ProgressCallback | None
    on_cells: Callable[[list[Cell]], None] | None
    memory_limit: int | None
    layout_seed: int | None
    templates: bool | None
    count: int = 0
    """Processes run so far."""

    def __post_init__(self) -> None:
        self.rng = random.SystemRandom()

    def executable(self, pair: _Pair) -> str:
        return self.executables[pair.group.python] if self.executables and pair.group.python else self.python

    def seed(self) -> int:
        return self.rng.randrange(1 << 31) if self.layout_seed is None else self.layout_seed

    def timed(self, pair: _Pair, workers: Templates, total: int) -> None:
        """One timed process of ``pair``; a worker killed by a signal is run again once."""
        if self.on_progress:
            self.on_progress(self.count, total, f"{pair.label} (process {pair.done + 1})")
        executable, settings = self.executable(pair), self.settings
        seed = self.seed()
        started = time.monotonic()
        answer = run_worker(executable, pair.job(settings, self.memory_limit, seed), self.timeout,
                            templates=workers)  # fmt: skip
        if isinstance(answer, WorkerFailure) and answer.message.startswith(KILLED) and not pair.retried:
            # One retry for a worker killed by a signal: a rare crash inside the tracing pass
            # (seen once in ~500 processes) must not fail a cell, and so a gate; a scenario that
            # crashes every time still fails.
            pair.retried = True
            for pool in pair.pools:
                pair.cells[pool].warnings.append(f"a worker process {answer.message[11:]}; it was run again")
            seed = self.seed()
            answer = run_worker(executable, pair.job(settings, self.memory_limit, seed), self.timeout,
                                templates=workers)  # fmt: skip
        self.count += 1
        pair.spent += time.monotonic() - started
        if isinstance(answer, WorkerFailure):
            _fail(pair, answer)
        else:
            _add(pair, answer, seed)
            if pair.loops is None:
                mine = {name: answer.pools[name].run for name in pair.pools}
                pair.loops = {name: run.loops for name, run in mine.items()}
                pair.loops[REFERENCE] = mine[pair.pools[0]].reference_loops or 0
            pair.done += 1
        if self.on_cells:
            self.on_cells([])

    def counted(self, pairs: list[_Pair]) -> None:
        """The counting processes (``pairs`` holds a pair once for each it still needs), side by
        side: they time nothing, and the timed processes are over. A pair that failed is not
        counted; an interpreter without memray is asked once and noted. A counting process that
        dies is run again once; a second death leaves the pair's counts out, with a warning, and
        its timed figures stand."""
        jobs = []
        for pair in pairs:
            job = CountJob(pair.group.ref, pair.group.params, pair.group.threads, pair.pools,
                           self.settings.count_ops, self.seed(), self.memory_limit,
                           concurrency=pair.group.concurrency, loop=self.settings.loop)  # fmt: skip
            jobs.append((self.executable(pair), job))
        total = self.count + len(jobs)
        uncounted: set[str] = set()
        again: list[int] = []

        def keep(index: int) -> bool:
            pair = pairs[index]
            return not pair.finished and jobs[index][0] not in uncounted

        def answered(index: int, answer: Answer | WorkerFailure) -> None:
            self.count += 1
            pair = pairs[index]
            if self.on_progress:
                self.on_progress(self.count, total, f"counting allocations: {pair.label}")
            if isinstance(answer, WorkerFailure):
                if answer.message.startswith(KILLED) and index not in again:
                    again.append(index)
                    return
                note = f"allocations not counted: the counting process failed ({answer.message})"
                for pool in pair.pools:
                    if note not in pair.cells[pool].warnings:
                        pair.cells[pool].warnings.append(note)
                return
            if answer.not_counted:
                uncounted.add(jobs[index][0])
            _add_counts(pair, answer, jobs[index][1].layout_seed)
            if self.on_cells:
                self.on_cells([])

        parallel = max(1, min(MAX_COUNTING, os.cpu_count() or 1))
        run_workers(jobs, self.timeout, parallel=parallel, on_answer=answered, keep=keep,
                    templates=self.templates)  # fmt: skip
        if again:
            order = list(again)
            run_workers([jobs[i] for i in order], self.timeout, parallel=parallel, templates=self.templates,
                        on_answer=lambda k, a: answered(order[k], a), keep=lambda k: keep(order[k]))  # fmt: skip


MAX_COUNTING = 4
"""Counting processes run side by side, at most this many (and no more than the CPUs)."""


def _add_counts(pair: _Pair, answer: Answer, seed: int) -> None:
    """Add one counting process's figures to the pair's cells."""
    for pool in pair.pools:
        cell = pair.cells[pool]
        notes = [answer.not_counted] if answer.not_counted else []
        found = answer.counts.get(pool)
        if found is not None and found.ops > 0:
            cell.counts.append(Count(found.allocations / found.ops, found.bytes / found.ops, seed))
            if cell.allocs is None:
                cell.allocs = AllocStats()
            cell.allocs.add(found)
            notes.extend(answer.notes.get(pool, []))
        for warning in notes:
            if warning not in cell.warnings:
                cell.warnings.append(warning)


def _fail(pair: _Pair, failure: WorkerFailure) -> None:
    """A failed process fails its pair's pooled cell, and ``none`` too unless another pair of the
    group measured it; no more processes are spent on the pair."""
    pair.finished = True
    owners = [pair.pooled] if len(pair.pools) > 1 else [pair.pools[0]]
    if len(pair.pools) > 1 and not pair.cells["none"].runs:
        owners.append("none")
    for pool in owners:
        cell = pair.cells[pool]
        cell.status = "skipped" if failure.skipped else "failed"
        cell.error = failure.message
        cell.runs.clear()


def _add(pair: _Pair, answer: Answer, seed: int) -> None:
    """Add one process's answer to the pair's cells: its runs get what only the parent knows (the
    ratios to ``none`` of the same process, the partner, the seed); GC totals and memory medians
    over the processes."""
    base = answer.pools["none"].run.values if "none" in answer.pools else []
    for pool in pair.pools:
        cell = pair.cells[pool]
        if cell.status in ("failed", "skipped") and pool != "none":
            continue
        cell.status, cell.error = "ok", None  # none: another pair may have failed first
        mine = answer.pools[pool]
        run = mine.run
        if pool != "none" and base:
            run.ratios = [b / v for b, v in zip(base, run.values, strict=False) if v > 0]
        run.layout_seed = seed
        run.partner = next((p for p in pair.pools if p != pool), None)
        cell.runs.append(run)
        cell.latency_ns.extend(mine.latency)
        if mine.gc is not None:
            if cell.gc is None:
                cell.gc = GcStats()
            cell.gc.add(mine.gc)
        if answer.interpreter.get("gil_enabled") is False and FREE_THREADED_GC not in cell.warnings:
            cell.warnings.append(FREE_THREADED_GC)
        cell.warnings.extend(w for w in answer.warnings if w not in cell.warnings)
        hit_rates = [r.hit_rate for r in cell.runs if r.hit_rate is not None]
        cell.hit_rate = statistics.fmean(hit_rates) if hit_rates else None
        if mine.memory is not None:
            cell.memory = _memory(
                cell.runs, mine.memory.peak_reset and (cell.memory is None or cell.memory.peak_reset)
            )
            cell.peak_rss_bytes = cell.memory.peak_bytes
        if mine.pool_stats is not None:
            cell.pool_stats = mine.pool_stats


def _memory(runs: Sequence[Run], peak_reset: bool) -> MemoryStats:
    """The cell's memory: medians over its processes' GC passes."""
    peaks = [r.peak_rss_bytes for r in runs if r.peak_rss_bytes is not None]
    added = [r.rss_added_bytes for r in runs if r.rss_added_bytes is not None]
    return MemoryStats(
        int(statistics.median(peaks)) if peaks else 0,
        int(statistics.median(added)) if added else 0,
        peak_reset,
    )
