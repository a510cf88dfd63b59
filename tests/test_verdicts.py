"""Verdicts over seeds: t-intervals, and 'inconclusive' when the interval straddles the threshold."""

from __future__ import annotations

import math

import pytest

from bayesprune.report.verdicts import FAILS, HOLDS, INCONCLUSIVE, combine, difference, interval, t_quantile


def test_interval_of_three_seeds_is_the_t_interval():
    found = interval([1.0, 2.0, 3.0])
    assert found.mean == 2.0 and found.seeds == 3
    assert found.high - found.mean == pytest.approx(4.303 * 1.0 / math.sqrt(3))


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


def test_t_quantile_widens_for_fractional_degrees_and_tends_to_the_normal():
    assert t_quantile(2.7) == t_quantile(2)
    assert t_quantile(1000) == 1.96
    with pytest.raises(ValueError):
        t_quantile(0.5)
