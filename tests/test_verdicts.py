"""Verdicts over seeds: t-intervals, and 'inconclusive' when the interval straddles the threshold."""

from __future__ import annotations

import math
import statistics

import pytest

from scipy import stats

from bayesprune.report.verdicts import FAILS, HOLDS, INCONCLUSIVE, combine, difference, interval, t_quantile


def test_interval_of_three_seeds_is_the_t_interval():
    found = interval([1.0, 2.0, 3.0])
    assert found.mean == 2.0 and found.seeds == 3
    assert found.high - found.mean == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-6)  # t(2) = 4.302653


def test_a_margin_inside_seed_spread_is_inconclusive_and_outside_it_decides():
    straddling = interval([0.018, 0.021, 0.024])  # around a 0.02 threshold
    assert straddling.below(0.02) == INCONCLUSIVE and straddling.above(0.02) == INCONCLUSIVE
    assert interval([0.001, 0.002, 0.003]).below(0.02) == HOLDS
    assert interval([0.30, 0.31, 0.32]).below(0.02) == FAILS
    assert interval([0.30, 0.31, 0.32]).above(0.2) == HOLDS


def test_one_seed_decides_by_its_point_and_says_so():
    single = interval([0.01])
    assert math.isnan(single.low) and single.below(0.02) == HOLDS + " (one seed)"
    assert "one seed" in single.text()


def test_an_interval_reads_a_mean_that_rounds_to_zero_without_a_minus_sign():
    assert interval([-0.001, 0.0, 0.0]).text(2).startswith("0.00 [")  # not '-0.00'
    assert interval([-0.2, -0.1, -0.3]).text(2).startswith("-0.20 [")
    assert interval([-0.004]).text(2) == "0.00 (one seed)"


def test_welch_difference_of_separated_and_overlapping_groups():
    apart = difference([0.98, 0.981, 0.979], [0.90, 0.91, 0.905])
    assert apart.above(0.0) == HOLDS and apart.mean == pytest.approx(0.075, abs=1e-3)
    close = difference([0.979, 0.981, 0.977], [0.978, 0.976, 0.980])  # 0.1 points apart, sd 0.2 points
    assert close.above(0.0) == INCONCLUSIVE
    assert difference([1.0, 1.0], [0.5, 0.5]).low == 0.5  # no spread: the interval is the point


def test_combine_fails_if_any_fails_and_holds_only_if_all_hold():
    assert combine([HOLDS, HOLDS]) == HOLDS
    assert combine([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([INCONCLUSIVE, FAILS]) == FAILS
    assert combine([HOLDS, HOLDS + " (one seed)"]) == HOLDS + " (one seed)"


def test_t_quantile_is_exact_at_fractional_degrees_and_tends_to_the_normal():
    assert t_quantile(2) == pytest.approx(4.302653, rel=1e-6) and t_quantile(4) == pytest.approx(2.776445, rel=1e-6)
    assert t_quantile(3) < t_quantile(2.7) < t_quantile(2)  # not rounded down to 2's, which widened
    assert t_quantile(1000) == pytest.approx(1.962339, rel=1e-6)  # not the normal's 1.96 above 30 degrees
    with pytest.raises(ValueError):
        t_quantile(0)


def test_welch_interval_with_two_seeds_each_is_the_hand_computed_one():
    found = difference([0.0, 2.0], [5.0, 7.0])  # variances 2 and 2 over n = 2: se = sqrt(2), 2 degrees of freedom
    half = 4.302653 * math.sqrt(2)
    assert (found.mean, found.low, found.high) == pytest.approx((-5.0, -5.0 - half, -5.0 + half), rel=1e-6)


def test_welch_interval_with_unequal_variances_matches_scipy_s_own_welch_test():
    first, second = [0.981, 0.979, 0.984], [0.95, 0.97, 0.91, 0.96]  # spreads 10x apart, 3 against 4 seeds
    found = difference(first, second)
    expected = stats.ttest_ind(first, second, equal_var=False).confidence_interval(0.95)
    assert (found.low, found.high) == pytest.approx((expected.low, expected.high), rel=1e-9)
    va, vb = statistics.variance(first) / 3, statistics.variance(second) / 4  # Welch-Satterthwaite by hand: about 3.1
    dof = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    assert 3.0 < dof < 3.2 and found.high - found.mean < t_quantile(3) * math.sqrt(va + vb)
