"""Pure statistics on sequences of floats; each function names its method."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    if not values:
        raise ValueError("summary of no values")
    lo, hi = median_ci(values)
    return Summary(
        n=len(values),
        median=statistics.median(values),
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
    verdict: str  # "wins" | "loses" | "same"


def speedup(ratios: Sequence[float], min_effect: float = MIN_EFFECT) -> Speedup:
    """Median of paired same-round ratios, its order-statistic 95% CI, and a verdict.

    ``wins`` when the whole interval lies above 1 and the median clears ``1 + min_effect``;
    ``loses`` when it lies below 1 and the median is under ``1 / (1 + min_effect)``; else
    ``same``. The interval excluding 1 is the sign test on the paired ratios at alpha 0.05.
    """
    s = summarize(ratios)
    if s.ci_low > 1 and s.median >= 1 + min_effect:
        verdict = "wins"
    elif s.ci_high < 1 and s.median <= 1 / (1 + min_effect):
        verdict = "loses"
    else:
        verdict = "same"
    return Speedup(s.median, s.ci_low, s.ci_high, verdict)


def mann_whitney(base: Sequence[float], cand: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (scipy; the test benchstat uses)."""
    from scipy.stats import mannwhitneyu

    if len(set(base) | set(cand)) == 1:
        return 1.0  # identical constant samples: no evidence of any difference
    return float(mannwhitneyu(cand, base, alternative="two-sided").pvalue)


def ratio_ci(base: Sequence[float], cand: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of median(cand) / median(base) (scipy, 2,000 resamples,
    fixed seed so the same files always give the same interval)."""
    import numpy as np
    from scipy.stats import bootstrap

    def stat(b: Any, c: Any, axis: int) -> Any:
        return np.median(c, axis=axis) / np.median(b, axis=axis)

    res = bootstrap(
        (np.asarray(base), np.asarray(cand)),
        stat,
        n_resamples=2000,
        vectorized=True,
        method="percentile",
        confidence_level=confidence,
        rng=np.random.default_rng(0),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
