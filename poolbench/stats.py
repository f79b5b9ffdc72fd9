"""Pure statistics on sequences of floats; each function names its method."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
MIN_EFFECT = 0.05
"""A speedup must also clear ±5% to be called a win or a loss. Same-process pooled/unpooled
ratios varied by up to ±4% between identical processes on a shared 2-core machine: a smaller
difference, however significant within one run, does not survive the next one."""


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
MIN_MODE_SHARE = 0.25
"""A second mode held by at least a quarter of the processes makes the cell ``unstable``; a single
stray process out of six or more is reported as a minority mode, and the median stands."""


@dataclass(frozen=True)
class Mode:
    value: float  # median of the per-process medians in this mode
    share: float  # fraction of the processes


@dataclass(frozen=True)
class Stability:
    """Whether a cell's worker processes agree: one mode, or two with their shares."""

    modes: tuple[Mode, ...]

    @property
    def split(self) -> bool:
        return len(self.modes) > 1

    @property
    def unstable(self) -> bool:
        return self.split and min(m.share for m in self.modes) >= MIN_MODE_SHARE


def process_modes(runs: Sequence[Sequence[float]], gap: float = MODE_GAP) -> Stability:
    """Split the processes at the widest gap between their medians (log scale); two modes when
    the gap exceeds ``gap``x and no value of the lower side reaches the lowest of the upper side
    (the processes disagree beyond their own spread)."""
    runs = [r for r in runs if r]
    if not runs:
        raise ValueError("modes of no values")
    ordered = sorted(runs, key=statistics.median)
    medians = [statistics.median(r) for r in ordered]
    whole = Stability((Mode(statistics.median(medians), 1.0),))
    if len(ordered) < 2 or medians[0] <= 0:
        return whole
    logs = [math.log(m) for m in medians]
    widest, cut = max((logs[i + 1] - logs[i], i + 1) for i in range(len(logs) - 1))
    low, high = ordered[:cut], ordered[cut:]
    if widest <= math.log(gap) or max(max(r) for r in low) >= min(min(r) for r in high):
        return whole
    n = len(ordered)
    return Stability(
        (
            Mode(statistics.median(medians[:cut]), cut / n),
            Mode(statistics.median(medians[cut:]), (n - cut) / n),
        )
    )


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
class Speedup:
    """``none / pool`` time: above 1 the pool is faster."""

    ratio: float
    ci_low: float
    ci_high: float
    verdict: str  # "wins" | "loses" | "same" | "unstable"
    stability: Stability | None = None


def speedup(ratios: Sequence[Sequence[float]], min_effect: float = MIN_EFFECT) -> Speedup:
    """Paired same-round ratios, one list per worker process: the median of per-process medians,
    its two-level bootstrap 95% CI (:func:`hierarchical_median_ci`) and a verdict.

    ``unstable`` when the processes split into two modes (:func:`process_modes`), each held by at
    least :data:`MIN_MODE_SHARE` of them: no single figure is true of that cell. Otherwise
    ``wins`` when the whole interval lies above 1 and the median clears ``1 + min_effect``;
    ``loses`` when it lies below 1 and the median is under ``1 / (1 + min_effect)``; else ``same``.
    """
    s = summarize_runs(ratios)
    stability = process_modes(ratios)
    if stability.unstable:
        verdict = "unstable"
    elif s.ci_low > 1 and s.median >= 1 + min_effect:
        verdict = "wins"
    elif s.ci_high < 1 and s.median <= 1 / (1 + min_effect):
        verdict = "loses"
    else:
        verdict = "same"
    return Speedup(s.median, s.ci_low, s.ci_high, verdict, stability)


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
