from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poolbench.stats import median_ci, percentile, speedup, summarize


def test_median_ci_of_ten_values_uses_ranks_two_and_nine():
    values = list(range(1, 11))
    assert median_ci(values) == (2, 9)


def test_median_ci_of_too_few_values_is_the_full_range():
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)


@given(st.lists(st.floats(min_value=0.001, max_value=1e9), min_size=1, max_size=200))
def test_median_ci_always_contains_the_median(values):
    lo, hi = median_ci(values)
    s = summarize(values)
    assert lo <= s.median <= hi


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5


def test_speedup_wins_when_interval_is_above_one_and_large_enough():
    assert speedup([1.5, 1.52, 1.49, 1.51, 1.5, 1.48, 1.53, 1.5, 1.5, 1.49]).verdict == "wins"


def test_speedup_loses_when_interval_is_below_one():
    assert speedup([0.7, 0.71, 0.69, 0.7, 0.72, 0.7, 0.68, 0.7, 0.7, 0.71]).verdict == "loses"


def test_small_significant_difference_is_still_same():
    s = speedup([1.02, 1.021, 1.019, 1.02, 1.02, 1.022, 1.018, 1.02, 1.02, 1.021])
    assert s.ci_low > 1
    assert s.verdict == "same"


def test_noisy_ratios_are_same():
    assert speedup([0.8, 1.4, 0.9, 1.3, 1.0, 1.2, 0.85, 1.25, 1.1, 0.95]).verdict == "same"


def test_summary_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        summarize([])
