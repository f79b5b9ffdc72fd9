"""Planning a run: the matrix of groups (scenario × parameter values × threads, or concurrency for
an async scenario), checked, and the slice of it one shard runs. Nothing here starts a process."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .fields import MAX_CONCURRENCY
from .loading import ScenarioRef
from .params import SIZE_PARAM, format_params, resolve
from .pools import STRATEGIES, plugins
from .scenario import Scenario


@dataclass(frozen=True)
class Group:
    """The cells one worker measures together: every pool of one (scenario, params, threads)."""

    ref: ScenarioRef
    params: dict[str, Any]
    threads: int
    pools: tuple[str, ...]
    python: str = ""
    """The interpreter's label in a run under several (``Cell.python``)."""
    concurrency: int = 0
    """Tasks on one event loop (an async scenario; ``threads`` is then 1)."""

    @property
    def members(self) -> int:
        return self.concurrency or self.threads

    @property
    def label(self) -> str:
        shown = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        members = f"concurrency={self.concurrency}" if self.concurrency else f"threads={self.threads}"
        return f"{self.ref.name} {members} {shown}" + (f" @{self.python}" if self.python else "")


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


def check_concurrency(concurrency: Sequence[int]) -> tuple[int, ...]:
    bad = [c for c in concurrency if c < 1 or c > MAX_CONCURRENCY]
    if bad:
        raise UsageError(
            f"bad concurrency {bad[0]}",
            hint=f"--concurrency takes task counts from 1 to {MAX_CONCURRENCY:,}, e.g. 1,16,128",
        )
    return tuple(dict.fromkeys(concurrency))


THREADS = (1, 2, 4)
"""The default ``--threads`` of synchronous scenarios."""
CONCURRENCY = (1, 16, 128)
"""The default ``--concurrency`` of async scenarios."""


def plan(
    scenarios: Sequence[tuple[ScenarioRef, type[Scenario]]],
    pools: Sequence[str],
    threads: Sequence[int],
    grid: Mapping[str, Sequence[str]],
    concurrency: Sequence[int] = CONCURRENCY,
) -> list[Group]:
    """The matrix scenario × parameter values × threads (synchronous scenarios) or concurrency
    (async ones); every ``-p`` key must fit a scenario."""
    pools_ = check_pools(pools)
    threads_ = check_threads(threads)
    concurrency_ = check_concurrency(concurrency)
    for key in grid:
        if not any(key in cls.default_params() for _, cls in scenarios):
            names = ", ".join(ref.name for ref, _ in scenarios)
            raise UsageError(f"no selected scenario has a parameter {key!r} (selected: {names})",
                             hint="`poolbench list` shows each scenario's parameters")  # fmt: skip
    groups: list[Group] = []
    for ref, cls in scenarios:
        keys = [k for k in grid if k in cls.default_params()]
        seen: set[str] = set()
        for combo in itertools.product(*(grid[k] for k in keys)):
            params = resolve(
                ref.name, cls.default_params(), cls.choices, dict(zip(keys, combo, strict=False))
            )
            # -p size=16,16 or -p size=1KiB -p size=1024 name one cell twice: measured once (two
            # cells with one key would make a file that no reader accepts).
            if format_params(params) not in seen:
                seen.add(format_params(params))
                if cls.is_async():
                    groups.extend(Group(ref, params, 1, pools_, concurrency=c) for c in concurrency_)
                else:
                    groups.extend(Group(ref, params, t, pools_) for t in threads_)
    return groups


def sized_groups(groups: Sequence[Group], sizes: Sequence[int]) -> list[Group]:
    """A size sweep's groups: each pool of each group at each size, alone (no ``none``: a size is
    a pool's), sizes interleaved pool by pool so a slow minute falls on every size of a pool."""
    return [
        dataclasses.replace(g, params={**g.params, SIZE_PARAM: size}, pools=(pool,))
        for g in groups
        for size in sizes
        for pool in g.pools
        if pool != "none"
    ]


def under(groups: Sequence[Group], pythons: Sequence[str]) -> list[Group]:
    """The matrix once per interpreter (labels), interpreters interleaved group by group: a slow
    minute of a shared machine then falls on both sides of a GIL-vs-free-threaded comparison."""
    if len(pythons) < 2:
        return list(groups)
    return [dataclasses.replace(g, python=p) for g in groups for p in pythons]


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → ``(2, 4)``: the second of four shards."""
    k, sep, n = text.partition("/")
    try:
        shard = (int(k), int(n))
    except ValueError:
        shard = (0, 0)
    if not sep or not 1 <= shard[0] <= shard[1]:
        raise UsageError(f"bad --shard {text!r}", hint="write K/N with 1 <= K <= N, e.g. --shard 1/4")
    return shard


def shard_of(items: Sequence[object], shard: tuple[int, int]) -> list[int]:
    """The indexes shard K of N runs: every N-th, starting at K-1 (deterministic, balanced)."""
    k, n = shard
    return list(range(k - 1, len(items), n))
