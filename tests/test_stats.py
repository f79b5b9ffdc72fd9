"""The statistics a verdict and the gate rest on: intervals, repeated looks, modes, tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poolbench.stats import (
    hierarchical_median_ci,
    holm,
    log_shift,
    median_ci,
    percentile,
    process_modes,
    repeated_alpha,
    summarize,
    summarize_runs,
    t_interval,
)


def processes(values, per=2):
    """Split values into worker processes of ``per`` values each."""
    return [values[i : i + per] for i in range(0, len(values), per)]


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


def test_summary_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        summarize([])


def test_processes_split_into_as_many_modes_as_there_are_gaps_between_them():
    runs = [[1.46, 1.47]] * 4 + [[11.2, 11.0]] * 2 + [[0.13, 0.14]]
    modes = process_modes(runs).modes
    assert [round(m.value, 2) for m in modes] == [0.14, 1.46, 11.1]
    assert [m.members for m in modes] == [(6,), (0, 1, 2, 3), (4, 5)]


def test_processes_that_overlap_are_one_mode_however_far_their_medians():
    runs = [[1.0, 1.6, 1.3], [1.5, 1.1, 1.7], [1.2, 1.9, 1.4]]
    assert not process_modes(runs).split


def test_the_interval_comes_from_processes_not_from_pooled_values():
    # Four processes that each agree closely inside, but disagree with each other: pooling
    # every value would give a narrow interval; the process is the unit, so it is wide.
    runs = [[1.0 + k * 0.1 + j * 0.001 for j in range(10)] for k in range(4)]
    lo, hi = hierarchical_median_ci(runs)
    pooled_lo, pooled_hi = median_ci([v for r in runs for v in r])
    assert hi - lo > 2 * (pooled_hi - pooled_lo)
    assert summarize_runs(runs).median == pytest.approx(1.1545, abs=0.01)


def test_holm_adjusts_the_smallest_p_by_the_number_of_tests_and_keeps_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def test_a_consistent_thirty_percent_shift_between_six_processes_is_significant():
    base = [1.0, 1.03, 0.98, 1.01, 0.99, 1.02]
    shift = log_shift(base, [x * 1.3 for x in reversed(base)])
    assert shift.ratio == pytest.approx(1.3)
    assert shift.p_value < 1e-6
    assert shift.ci_low < 1.3 < shift.ci_high
    assert 0 < shift.detectable(0.05 / 48) < 0.3


def test_identical_figures_are_no_shift():
    assert log_shift([1.0, 1.0], [1.0, 1.0]).p_value == 1.0


def test_a_t_interval_of_logs_holds_the_mean_and_widens_with_a_stricter_level():
    mean, low, high = t_interval([0.0, 0.1, 0.2], 0.05)
    assert mean == pytest.approx(0.1)
    assert low < mean < high
    assert high - low == pytest.approx(2 * 4.3027 * 0.1 / 3**0.5, rel=1e-3)
    _, low2, high2 = t_interval([0.0, 0.1, 0.2], 0.01)
    assert high2 - high > 0 and low2 < low


def test_repeated_looks_need_a_stricter_level_than_one_look():
    assert repeated_alpha(3, 3) == pytest.approx(0.05)
    assert 0.05 / 8 < repeated_alpha(3, 10) < 0.02  # between Bonferroni over 8 looks and one look
    assert repeated_alpha(3, 10) < repeated_alpha(3, 5)
    assert repeated_alpha(3, 10) == repeated_alpha(3, 10)  # a fixed seed: the same file, the same interval
