"""Pure statistics on sequences of floats; each function names its method."""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    mean: float
    stdev: float
    min: float
    max: float
    ci_low: float
    ci_high: float


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Distribution-free confidence interval of the median, from order statistics.

    The ranks come from the Binomial(n, 1/2) distribution of how many values fall below the true
    median (the method benchstat uses). With fewer than 6 values no 95% interval exists and the
    full range is returned.
    """
    from scipy.stats import binom

    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("confidence interval of no values")
    k = int(binom.ppf((1 - confidence) / 2, n, 0.5))
    # ppf gives the smallest k with P(X <= k) >= alpha/2, so P(X < k) < alpha/2: the values of
    # ranks k and n-k+1 (1-based) bound the median.
    if k < 1:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


def summarize(values: Sequence[float]) -> Summary:
    """Median, its order-statistic 95% CI (:func:`median_ci`), mean, stdev, min, max: one sample."""
    return summarize_runs([values])


MODE_GAP = 1.25
"""Two groups of a cell's processes whose medians lie more than 25% apart, with no overlap between
their values, are two modes (two heap layouts, say), not noise."""


@dataclass(frozen=True)
class Mode:
    value: float  # median of the per-process medians in this mode
    share: float  # fraction of the processes
    members: tuple[int, ...] = ()
    """The indexes (into the runs given to :func:`process_modes`) of this mode's processes."""


@dataclass(frozen=True)
class Stability:
    """Whether a cell's worker processes agree: one mode, or several with their shares."""

    modes: tuple[Mode, ...]

    @property
    def split(self) -> bool:
        return len(self.modes) > 1


def process_modes(runs: Sequence[Sequence[float]], gap: float = MODE_GAP) -> Stability:
    """Group the processes by their medians: a new mode starts at every gap of more than ``gap``x
    between neighbouring medians (log scale) across which the middle halves of the processes'
    values do not meet (no upper quartile of the lower side reaches the lowest lower quartile of
    the upper side: the processes disagree beyond their own spread). Empty runs are left out of
    every mode; modes come in increasing order."""
    indexed = sorted(((statistics.median(r), i, r) for i, r in enumerate(runs) if r), key=lambda x: x[0])
    if not indexed:
        raise ValueError("modes of no values")
    n = len(indexed)
    # A process's spread is its middle half: one stray round (a value that met a slow moment, or
    # the other layout's copy once) must not join two modes that every other value keeps apart.
    below_max = list(itertools.accumulate((percentile(r, 75) for _, _, r in indexed), max))
    above_min = list(itertools.accumulate((percentile(r, 25) for _, _, r in reversed(indexed)), min))[::-1]
    groups: list[list[tuple[float, int]]] = [[indexed[0][:2]]]
    for k in range(1, n):
        low, high = indexed[k - 1][0], indexed[k][0]
        if low > 0 and high / low > gap and below_max[k - 1] < above_min[k]:
            groups.append([])
        groups[-1].append(indexed[k][:2])
    return Stability(
        tuple(
            Mode(statistics.median(m for m, _ in g), len(g) / n, tuple(sorted(i for _, i in g)))
            for g in groups
        )
    )


def t_interval(logs: Sequence[float], alpha: float) -> tuple[float, float, float]:
    """(mean, low, high) of a sample of logarithms: Student's t interval at level ``1 - alpha``,
    two-sided (scipy's t distribution). At least two values."""
    from scipy.special import stdtrit

    n = len(logs)
    if n < 2:
        raise ValueError("a t interval needs at least two values")
    mean = statistics.fmean(logs)
    half = float(stdtrit(n - 1, 1 - alpha / 2)) * statistics.stdev(logs) / math.sqrt(n)
    return mean, mean - half, mean + half


@functools.lru_cache(maxsize=64)
def repeated_alpha(first: int, last: int, alpha: float = 1 - CONFIDENCE) -> float:
    """The level each look's t interval must have for the intervals at *every* look from ``first``
    to ``last`` processes to hold the true value together with probability ``1 - alpha``.

    Repeated confidence intervals (Jennison and Turnbull, 1989) with one nominal level for every
    look (Pocock's shape): a pair of processes gets more processes until its verdict settles, and
    an interval at the usual 95% at each of several looks would miss the truth at *some* look
    more often than 5%, which is what stopping when a verdict appears would pick up. The level is
    found from 20,000 simulated normal sequences (numpy, fixed seed, so the same file
    always gives the same interval). One look (``first == last``) needs no correction: ``alpha``.
    Measured: 0.0122 for looks at 3 to 10 processes, 0.0113 for 5 to 16.
    """
    import numpy as np
    from scipy.special import stdtr

    if last <= first:
        return alpha
    looks = np.arange(max(first, 2), last + 1)
    x = np.random.default_rng(20261203).standard_normal((20_000, last))
    total, squares = np.cumsum(x, axis=1), np.cumsum(x * x, axis=1)
    n = looks[:, None]
    mean = total[:, looks - 1].T / n
    var = (squares[:, looks - 1].T - n * mean**2) / (n - 1)
    smallest_p = (2 * stdtr(n - 1, -np.abs(mean) / np.sqrt(var / n))).min(axis=0)
    # A look's interval misses the truth when its p-value is below the level: the level at which
    # a share ``alpha`` of the sequences miss at some look is that quantile of their smallest p.
    return float(np.quantile(smallest_p, alpha))


def hierarchical_median_ci(
    runs: Sequence[Sequence[float]], confidence: float = CONFIDENCE, resamples: int = 2000
) -> tuple[float, float]:
    """Percentile interval of the median of per-process medians, by a two-level bootstrap:
    resample the processes, then the values inside each (numpy, 2,000 resamples, fixed seed, so
    the same file always gives the same interval).

    The process is the unit of replication: values of one process share its heap layout, its
    calibration and its moment, and resampling them as if independent (pseudo-replication) gives
    intervals that the next run falls outside of. With one process this is the order-statistic
    interval of its values (:func:`median_ci`).
    """
    import numpy as np

    runs = [r for r in runs if r]
    if not runs:
        raise ValueError("confidence interval of no values")
    if len(runs) == 1:
        return median_ci(runs[0], confidence)
    rng = np.random.default_rng(0)
    # inner[j, b]: the median of a resample of process j's values, for bootstrap draw b
    inner = np.empty((len(runs), resamples))
    for j, r in enumerate(runs):
        arr = np.asarray(r, dtype=float)
        inner[j] = np.median(arr[rng.integers(0, len(arr), size=(resamples, len(arr)))], axis=1)
    picks = rng.integers(0, len(runs), size=(resamples, len(runs)))
    medians = np.median(inner[picks, np.arange(resamples)[:, None]], axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha])
    return float(low), float(high)


def summarize_runs(runs: Sequence[Sequence[float]]) -> Summary:
    """:func:`summarize` with the process as the unit: the median of per-process medians and its
    :func:`hierarchical_median_ci`; mean, stdev, min and max over every value."""
    runs = [r for r in runs if r]
    values = [v for r in runs for v in r]
    if not values:
        raise ValueError("summary of no values")
    lo, hi = hierarchical_median_ci(runs)
    return Summary(
        n=len(values),
        median=statistics.median(statistics.median(r) for r in runs),
        mean=statistics.fmean(values),
        stdev=statistics.stdev(values) if len(values) > 1 else 0.0,
        min=min(values),
        max=max(values),
        ci_low=lo,
        ci_high=hi,
    )


@dataclass(frozen=True)
class Shift:
    """cand / base from per-process figures: Welch's t-test on their logarithms."""

    ratio: float  # geometric mean of cand over geometric mean of base
    ci_low: float
    ci_high: float
    p_value: float  # two-sided, not adjusted for multiple tests
    se: float  # standard error of the log ratio
    df: float

    def detectable(self, alpha: float) -> float:
        """The smallest relative change a two-sided test at ``alpha`` would call significant with
        this spread and these sample sizes (the minimal detectable effect at 50% power)."""
        from scipy.stats import t

        if self.se == 0:
            return 0.0
        return math.exp(float(t.ppf(1 - alpha / 2, self.df)) * self.se) - 1


def log_shift(base: Sequence[float], cand: Sequence[float], confidence: float = CONFIDENCE) -> Shift:
    """Welch's two-sample t-test (scipy's t distribution, two-sided) on the logarithms of
    per-process figures, with the ``confidence`` interval of the ratio of geometric means.

    Per-process figures, not every value: the process is the unit of replication. Logarithms,
    because machine-speed effects multiply. At least two figures a side."""
    from scipy.stats import t

    if len(base) < 2 or len(cand) < 2:
        raise ValueError("a shift needs at least two figures a side")
    lb = [math.log(x) for x in base]
    lc = [math.log(x) for x in cand]
    diff = statistics.fmean(lc) - statistics.fmean(lb)
    vb, vc = statistics.variance(lb) / len(lb), statistics.variance(lc) / len(lc)
    se = math.sqrt(vb + vc)
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
        return Shift(math.exp(diff), math.exp(diff), math.exp(diff), p, 0.0, float(len(lb) + len(lc) - 2))
    df = (vb + vc) ** 2 / ((vb**2 / (len(lb) - 1) if vb else 0.0) + (vc**2 / (len(lc) - 1) if vc else 0.0))
    p = float(2 * t.sf(abs(diff) / se, df))
    half = float(t.ppf(1 - (1 - confidence) / 2, df)) * se
    return Shift(math.exp(diff), math.exp(diff - half), math.exp(diff + half), p, se, df)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order.

    Rejecting where the adjusted value is below alpha keeps the chance of *any* false alarm among
    all the tests at most alpha (the family-wise error rate), whatever their dependence."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
