"""``poolbench size``: how big should a pool be? Its rows, its recommendation, Little's law.

A size sweep is a run whose cells are one pool at several sizes (the generic ``max_size``
parameter, which every pool that makes callers wait takes: SQLAlchemy's ``pool_size``,
psycopg's and asyncpg's ``max_size``), each measured in worker processes of its own as ``run``
measures, plus an observed pass (:func:`poolbench.measure.observe`): every get and put of the
pool timed, so the rows have acquire waits, the time an object is held, and how many were in use
at once.

The recommendation (after HikariCP's advice and SQLAlchemy's rule of thumb, sqlalchemy#5308) is
the smallest size whose throughput is within :data:`NEAR_BEST` of the best measured and whose p99
acquire wait is under the target; beside it, Little's law: the measured arrival rate times the
mean time an object is held is the number of objects the load keeps busy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import UsageError
from .params import SIZE_PARAM, format_params
from .result import Cell, Result
from .stats import percentile

NEAR_BEST = 0.95
"""A size whose throughput is at least this share of the best measured one counts as the best."""
SIZES = (1, 2, 4, 8, 16, 32)
"""The default ``--sizes``."""
MAX_WAIT_NS = 5e6
"""The default ``--max-wait``: 5 ms."""


@dataclass(frozen=True)
class SizeRow:
    """One pool at one size: what the sweep measured (``None`` where it could not)."""

    size: int
    status: str
    error: str | None
    ops_per_sec: float | None
    """Operations a second, all members together: the median of the timed values."""
    wait_p50_ns: float | None
    wait_p99_ns: float | None
    wait_max_ns: float | None
    timeouts: int
    peak_in_use: int | None
    created: int | None
    """Objects the pool created in a process (connections opened): the most in any one."""
    hold_ns: float | None
    """Mean time an object was out of the pool, from its get's return to its put."""
    arrival_rate: float | None
    """Gets a second in the observed pass (Little's lambda)."""
    gets: int = 0
    """Gets the observed pass saw: 0 from a scenario that never takes from the pool."""

    @property
    def busy(self) -> float | None:
        """Little's law: arrival rate x mean time held = objects the load keeps in use."""
        if self.arrival_rate is None or self.hold_ns is None:
            return None
        return self.arrival_rate * self.hold_ns / 1e9


@dataclass(frozen=True)
class Recommendation:
    pool: str
    size: int | None
    """The recommended size, or ``None`` when no size meets the wait target (or none was measured)."""
    reason: str
    littles_law: str
    """The arrival rate, the time held and their product, at the best throughput measured."""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolSweep:
    pool: str
    members: int
    """Threads, or the tasks of an async scenario."""
    rows: tuple[SizeRow, ...]
    recommendation: Recommendation
    tasks: bool = False
    """Whether the members are tasks on one event loop (an async scenario), not threads."""

    @property
    def members_label(self) -> str:
        return f"{self.members} {'tasks' if self.tasks else 'threads'}"


def row_of(cell: Cell) -> SizeRow:
    from .report import report_cell

    size = int(cell.params[SIZE_PARAM])
    seen = [r.acquire for r in cell.runs if r.acquire is not None]
    # What `run` reports: the median of the per-process medians of ns per op, as operations a second.
    ops_per_sec = report_cell(cell).ops_per_sec if cell.status == "ok" else None
    waits = [w for a in seen for w in a.waits_ns]
    gets = sum(a.ops for a in seen)
    held = sum(a.held_ns * a.ops for a in seen)
    seconds = sum(a.seconds for a in seen)
    return SizeRow(
        size=size,
        status=cell.status,
        error=cell.error,
        ops_per_sec=ops_per_sec,
        wait_p50_ns=percentile(waits, 50) if waits else None,
        wait_p99_ns=percentile(waits, 99) if waits else None,
        wait_max_ns=max(a.wait_max_ns for a in seen) if seen else None,
        timeouts=sum(a.timeouts for a in seen),
        peak_in_use=max(a.peak_in_use for a in seen) if seen else None,
        created=max(a.created for a in seen) if seen else None,
        hold_ns=held / gets if gets else None,
        arrival_rate=gets / seconds if seconds > 0 and gets else None,
        gets=gets,
    )


def recommend(pool: str, rows: Sequence[SizeRow], max_wait_ns: float) -> Recommendation:
    """The smallest size within :data:`NEAR_BEST` of the best throughput whose p99 wait is under
    ``max_wait_ns``; else none, and by how much the closest size misses the wait target."""
    from .render.format import duration, rate

    measured = [r for r in rows if r.ops_per_sec is not None]
    if not measured:
        return Recommendation(pool, None, "no size was measured", "")
    best = max(measured, key=lambda r: r.ops_per_sec or 0.0)
    top = best.ops_per_sec or 0.0
    near = [r for r in measured if (r.ops_per_sec or 0.0) >= NEAR_BEST * top]
    little = ""
    if best.busy is not None and best.arrival_rate is not None and best.hold_ns is not None:
        little = (
            f"Little's law at {best.size}: {rate(best.arrival_rate)} gets/s x {duration(best.hold_ns)} held"
            f" = {best.busy:.1f} objects in use"
        )
    notes = []
    largest = max(r.size for r in rows)
    if best.size == largest and len(near) == 1 and len(measured) > 1:
        notes.append(
            f"throughput was still the best at the largest size measured ({largest}): try larger sizes"
        )
    meeting = [r for r in near if r.wait_p99_ns is not None and r.wait_p99_ns <= max_wait_ns]
    if meeting:
        chosen = min(meeting, key=lambda r: r.size)
        share = (chosen.ops_per_sec or 0.0) / top
        wait = duration(chosen.wait_p99_ns)
        reason = f"{chosen.size}: {share:.0%} of the best throughput, p99 wait {wait}"
        return Recommendation(pool, chosen.size, reason, little, tuple(notes))
    waited = [r for r in near if r.wait_p99_ns is not None]
    if not waited:
        return Recommendation(pool, None, "no acquire waits were observed", little, tuple(notes))
    closest = min(waited, key=lambda r: r.wait_p99_ns or math.inf)
    over = (closest.wait_p99_ns or 0.0) - max_wait_ns
    reason = (
        f"no size meets p99 wait <= {duration(max_wait_ns)}: the closest, {closest.size}, waits "
        f"{duration(closest.wait_p99_ns)} at p99 ({duration(over)} over)"
    )
    return Recommendation(pool, None, reason, little, tuple(notes))


def sweeps(result: Result, max_wait_ns: float) -> list[PoolSweep]:
    """The sweep of each (scenario, params, members, pool) of a size result, sizes in order."""
    groups: dict[tuple[str, str, int, bool, str, str], list[Cell]] = {}
    for cell in result.cells:
        if SIZE_PARAM not in cell.params or cell.pool == "none":
            continue
        rest = {k: v for k, v in cell.params.items() if k != SIZE_PARAM}
        key = (
            cell.scenario,
            format_params(rest),
            cell.members,
            bool(cell.concurrency),
            cell.pool,
            cell.python,
        )
        groups.setdefault(key, []).append(cell)
    found = []
    for (_scenario, _params, members, tasks, pool, _python), cells in groups.items():
        rows = tuple(sorted((row_of(c) for c in cells), key=lambda r: r.size))
        found.append(PoolSweep(pool, members, rows, recommend(pool, rows, max_wait_ns), tasks))
    return found


def is_size_result(result: Result) -> bool:
    """Whether ``result`` came from ``poolbench size`` (its config says so)."""
    return result.config.get("command") == "size"


_UNITS = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}


def parse_duration(text: str, what: str) -> float:
    """``5ms``, ``400us``, ``0.5s`` (or a bare number of seconds) in ns: positive and finite."""
    stripped = text.strip()
    number, unit = stripped, "s"
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if stripped.endswith(suffix):
            number, unit = stripped[: -len(suffix)], suffix
            break
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{what} {text}: expected a positive duration", hint=f"e.g. {what} 5ms")
    return value


def sized(pool: str, asynchronous: bool) -> bool:
    """Whether ``pool`` has a size to sweep: its factory takes ``max_size``."""
    import inspect

    from .pools import factory_of

    factory = factory_of(pool, asynchronous=asynchronous)
    if factory is None:
        return False
    try:
        return SIZE_PARAM in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def max_wait_of(result: Result) -> float:
    """The wait target a size result was made with (its config), in ns; the default if it says none."""
    value = result.config.get("max_wait_ns")
    return float(value) if isinstance(value, (int, float)) and value > 0 else MAX_WAIT_NS


def never_taken(found: Sequence[PoolSweep]) -> PoolSweep | None:
    """A sweep whose measured sizes saw no get at all: its scenario never takes from the pool,
    so the pool's size changes nothing."""
    for sweep in found:
        measured = [r for r in sweep.rows if r.status == "ok"]
        if measured and all(r.gets == 0 for r in measured):
            return sweep
    return None
