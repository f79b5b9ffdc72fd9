"""Does pooling pay off in this cell? The speedup ``none / pool`` and its verdict.

A pooled cell holds, per worker process, the same-round ratios ``none / pool`` of that process.
The process is the unit of replication (its values share a heap layout, a calibration and a
moment), so each process gives one figure, the logarithm of its median ratio, and the cell's
speedup is their geometric mean with a Student's t interval over processes.

The verdicts, with ``FLOOR`` = 5%:

* ``wins``: the interval lies above 1 and the speedup is at least 1.05x;
* ``loses``: the interval lies below 1 and the speedup is at most 1/1.05;
* ``same`` (shown "no difference"): the whole interval lies within [1/1.05, 1.05], so any
  difference there is has been shown to be smaller than the floor (equivalence, not absence
  of evidence);
* ``inconclusive``: none of these; shown with its interval and how many processes would likely
  settle it;
* ``unstable``: the processes split into modes (heap layouts: :func:`~poolbench.stats.process_modes`)
  that disagree on the verdict, the other mode held by at least a tenth of them.

Modes that agree (pooling wins by 1.5x in most layouts and by 11x in the others) do not make a
cell unstable: the verdict is the main mode's (the one with most processes), and the other modes
are reported with it. A run gives a pair more processes until its verdict is settled
(:func:`settled`), so the interval at every look must hold the truth together with the others:
its level comes from :func:`~poolbench.stats.repeated_alpha` for the run's looks.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .settings import Settings
from .stats import CONFIDENCE, Mode, Stability, median_ci, process_modes, repeated_alpha, t_interval

FLOOR = 0.05
"""A speedup must clear ±5% to be a win or a loss, and an interval must lie within ±5% to show no
difference. Same-process pooled/unpooled ratios moved by up to ±4% between identical processes on a
shared 2-core machine: a smaller difference, however significant within one run, does not survive
the next one."""
MIN_MODE_SHARE = 0.10
"""A mode that disagrees with the main one makes the cell ``unstable`` when it holds at least a
tenth of the processes. A mode is a process apart from the others beyond its own spread (its
middle half of values, not one stray value): a layout the user's program may well have. At a
quarter, bytes-buffer at one thread (pooling loses 7x in about a fifth of its forked workers'
layouts, wins 1.5x in the rest) read "unstable" in 2 to 3 runs of 5 and "pooling wins" in the
others; a single process in fewer than ten is reported with the main mode's verdict."""
MAX_PROJECTED = 1000
VERDICTS = ("wins", "loses", "same", "inconclusive", "unstable")


@dataclass(frozen=True)
class Looks:
    """The sequential design a run used: a pair's verdict was looked at after each of its
    processes from ``first`` to ``last`` (the mode's minimum and budget). ``Looks(n, n)`` is a
    fixed number of processes: one look, no correction."""

    first: int
    last: int

    def alpha(self, n: int) -> float:
        """The level of each look's interval (a pair measured past its budget, as a resumed or
        merged one can be, is corrected for the looks it had)."""
        return repeated_alpha(self.first, max(self.last, n), 1 - CONFIDENCE)


FIXED = Looks(1, 1)


def looks_of(settings: Settings | Mapping[str, Any] | None) -> Looks:
    """The looks of a run's settings (a result file's ``config.settings``); files made before
    processes were spent adaptively had a fixed number: one look."""
    if isinstance(settings, Settings):
        return Looks(settings.min_processes, settings.max_processes)
    if isinstance(settings, Mapping):
        first, last = settings.get("min_processes"), settings.get("max_processes")
        if isinstance(first, int) and isinstance(last, int) and 1 <= first <= last:
            return Looks(first, last)
    return FIXED


@dataclass(frozen=True)
class Speedup:
    """``none / pool`` time: above 1 the pool is faster."""

    ratio: float
    ci_low: float
    ci_high: float
    verdict: str  # one of VERDICTS
    stability: Stability | None = None
    processes: int = 0
    """The processes the ratio and its interval rest on (the main mode's)."""
    more: int | None = None
    """For an ``inconclusive`` verdict: about how many more processes would settle it, from the
    spread seen so far; ``None`` when no number would (the estimate sits on a decision bound)."""


def _side(ratio: float) -> int:
    """+1 beyond the floor above 1, -1 beyond it below, 0 within it."""
    return 1 if ratio >= 1 + FLOOR else -1 if ratio <= 1 / (1 + FLOOR) else 0


def decide(ratio: float, low: float, high: float) -> str:
    if low > 1 and ratio >= 1 + FLOOR:
        return "wins"
    if high < 1 and ratio <= 1 / (1 + FLOOR):
        return "loses"
    if low >= 1 / (1 + FLOOR) and high <= 1 + FLOOR:
        return "same"
    return "inconclusive"


def speedup(ratios: Sequence[Sequence[float]], looks: Looks = FIXED) -> Speedup:
    """The speedup of one pooled cell from its per-process same-round ratios, and its verdict."""
    runs = [r for r in ratios if r]
    if not runs:
        raise ValueError("speedup of no ratios")
    stability = process_modes(runs)
    main = main_mode(stability)
    figures = [math.log(statistics.median(runs[i])) for i in main.members]
    n = len(figures)
    if n == 1:
        # One process: its own values give an interval, but nothing is known of other layouts.
        low, high = median_ci(runs[main.members[0]])
        ratio = math.exp(figures[0])
        return Speedup(ratio, low, high, "inconclusive", stability, 1, None)
    alpha = looks.alpha(n)
    mean, lo, hi = t_interval(figures, alpha)
    ratio, low, high = math.exp(mean), math.exp(lo), math.exp(hi)
    verdict = decide(ratio, low, high)
    others = [m for m in stability.modes if m is not main]
    if any(m.share >= MIN_MODE_SHARE and _side(m.value) != _side(ratio) for m in others):
        verdict = "unstable"
    more = _more(figures, looks) if verdict == "inconclusive" else None
    return Speedup(ratio, low, high, verdict, stability, n, more)


def main_mode(stability: Stability) -> Mode:
    """The mode the verdict is about: the one with the most processes (of two as large, the one
    nearer no difference)."""
    return max(stability.modes, key=lambda m: (len(m.members), -abs(math.log(m.value)) if m.value > 0 else 0))


def _more(figures: Sequence[float], looks: Looks) -> int | None:
    """How many more processes of the same spread would bring the interval clear of the bounds
    the estimate points to: within the floor for an estimate inside it, clear of 1 otherwise."""
    n = len(figures)
    mean, spread = statistics.fmean(figures), statistics.stdev(figures)
    bound = math.log(1 + FLOOR)
    room = bound - abs(mean) if abs(mean) < bound else abs(mean)
    if spread == 0:
        return 1
    if room <= 0:
        return None
    from scipy.special import stdtrit

    alpha = looks.alpha(n)
    for m in range(n + 1, MAX_PROJECTED + 1):
        if float(stdtrit(m - 1, 1 - alpha / 2)) * spread / math.sqrt(m) < room:
            return m - n
    return None


def settled(s: Speedup) -> bool:
    """Whether more processes are unlikely to change the verdict: a verdict was reached and the
    processes showed one mode (a split needs the budget's processes to tell the modes' shares)."""
    return s.verdict in ("wins", "loses", "same") and not (s.stability and s.stability.split)
