"""Verdicts: what each one claims, and that the claims hold under the run's stopping rule."""

from __future__ import annotations

import math
import random

import pytest

from poolbench.verdict import FIXED, Looks, decide, looks_of, settled, speedup


def processes(medians, spread=0.01, values=5, seed=1):
    """One list of same-round ratios per process, scattered around each process's median."""
    rng = random.Random(seed)
    return [[m * math.exp(rng.gauss(0, spread)) for _ in range(values)] for m in medians]


def test_pooling_wins_when_the_interval_is_above_one_and_the_speedup_clears_the_floor():
    s = speedup(processes([1.5, 1.52, 1.49, 1.51, 1.5]))
    assert s.verdict == "wins" and 1 < s.ci_low < 1.5 < s.ci_high
    assert s.processes == 5


def test_pooling_loses_when_the_interval_is_below_one_and_beyond_the_floor():
    assert speedup(processes([0.7, 0.71, 0.69, 0.7, 0.72])).verdict == "loses"


def test_no_difference_only_when_the_whole_interval_lies_within_the_floor():
    s = speedup(processes([1.0, 1.01, 0.99, 1.0, 1.005, 0.995]))
    assert s.verdict == "same"
    assert 1 / 1.05 <= s.ci_low and s.ci_high <= 1.05


def test_a_significant_difference_smaller_than_the_floor_is_no_difference():
    s = speedup(processes([1.02, 1.021, 1.019, 1.02, 1.02, 1.022], spread=0.001))
    assert s.ci_low > 1 and s.verdict == "same"


def test_a_wide_interval_around_one_is_inconclusive_not_no_difference():
    s = speedup(processes([0.8, 1.4, 0.9, 1.3, 1.0, 1.2]))
    assert s.verdict == "inconclusive"
    assert s.ci_high > 1.05 or s.ci_low < 1 / 1.05
    assert s.more is not None and s.more > 0


def test_an_estimate_on_the_floor_cannot_be_settled_by_more_processes():
    s = speedup([[1.05 * 0.98], [1.05 * 1.02], [1.05]])  # a geometric mean a hair under 1.05
    assert s.verdict == "inconclusive" and s.more is None


def test_one_process_is_inconclusive_whatever_it_measured():
    s = speedup([[1.5, 1.5, 1.5]])
    assert s.verdict == "inconclusive" and s.processes == 1


def test_modes_that_disagree_make_the_cell_unstable():
    runs = processes([1.46] * 4 + [0.13] * 2)
    s = speedup(runs)
    assert s.verdict == "unstable"
    assert s.ratio == pytest.approx(1.46, rel=0.02)  # the main mode's


def test_modes_that_agree_give_the_main_modes_verdict_and_are_reported():
    s = speedup(processes([1.46] * 6 + [11.2] * 3))
    assert s.verdict == "wins" and s.stability.split
    assert s.ratio == pytest.approx(1.46, rel=0.02)
    assert not settled(s)  # a split waits for the budget's processes to tell the shares


def test_one_process_in_more_than_ten_on_the_other_side_does_not_make_the_cell_unstable():
    assert speedup(processes([1.46] * 11 + [0.13])).verdict == "wins"
    assert speedup(processes([1.46] * 8 + [0.13])).verdict == "unstable"  # one in nine: a layout


def test_more_looks_widen_the_interval():
    runs = processes([1.1, 1.12, 1.09, 1.11])
    one, many = speedup(runs, FIXED), speedup(runs, Looks(3, 10))
    assert many.ci_high - many.ci_low > one.ci_high - one.ci_low


def test_the_looks_of_a_file_come_from_its_settings_and_old_files_had_one():
    assert looks_of({"min_processes": 3, "max_processes": 10}) == Looks(3, 10)
    assert looks_of({"processes": 6}) == FIXED
    assert looks_of(None) == FIXED


def test_decide_reads_the_bounds_as_documented():
    assert decide(1.06, 1.01, 1.11) == "wins"
    assert decide(1.04, 1.01, 1.049) == "same"
    assert decide(1.04, 0.99, 1.09) == "inconclusive"
    assert decide(0.9, 0.85, 0.99) == "loses"


def _sequential(truth: float, spread: float, looks: Looks, rng: random.Random):
    """One pair measured as a run measures it: processes until settled or the budget is spent."""
    medians: list[float] = []
    while True:
        medians.append(truth * math.exp(rng.gauss(0, spread)))
        if len(medians) < looks.first:
            continue
        s = speedup([[m] for m in medians], looks)
        if settled(s) or len(medians) >= looks.last:
            return s


@pytest.mark.parametrize(("truth", "wrong"), [(1.0, {"wins", "loses"}), (1.10, {"same", "loses"}),
                                              (1.03, {"loses"}), (1.06, {"loses", "same"})])  # fmt: skip
def test_verdicts_stay_right_under_the_stopping_rule(truth, wrong):
    # 2,000 pairs stopped as a run stops them (looks at 3 to 10 processes): the interval at the
    # stop holds the truth in at least 95% of them (less Monte Carlo slack), and a verdict that
    # contradicts the truth comes at most 5% of the time ("wins" at 1.03 does not: pooling is
    # faster there, though by less than the floor).
    rng = random.Random(7)
    looks = Looks(3, 10)
    stops = [_sequential(truth, 0.03, looks, rng) for _ in range(2000)]
    covered = sum(s.ci_low <= truth <= s.ci_high for s in stops) / len(stops)
    contradicted = sum(s.verdict in wrong for s in stops) / len(stops)
    assert covered >= 0.94
    assert contradicted <= 0.05
