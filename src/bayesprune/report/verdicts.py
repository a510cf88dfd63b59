"""Verdicts that know their noise: a claim's measure over seeds, its 95 % t-interval, and a third outcome,
"inconclusive", when the interval straddles the claim's threshold. A verdict resting on one seed says so."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95  # two-sided
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
NOT_TESTED = "not tested in this regime"
KEEPS = 0.02  # a model "keeps its accuracy" if pruning costs it at most 2 points
COLLAPSES = 0.20  # and "collapses" if it costs more than 20 points


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its t-interval (NaN bounds for a single seed)."""

    mean: float
    low: float
    high: float
    seeds: int

    def above(self, threshold: float) -> str:
        """HOLDS if the whole interval lies above threshold, FAILS if it lies at or below it, else INCONCLUSIVE;
        with one seed the point decides and the verdict says so."""
        if self.seeds < 2:
            return (HOLDS if self.mean > threshold else FAILS) + " (one seed)"
        return HOLDS if self.low > threshold else FAILS if self.high <= threshold else INCONCLUSIVE

    def below(self, threshold: float) -> str:
        """HOLDS if the whole interval lies at or below threshold, FAILS if above it, else INCONCLUSIVE."""
        if self.seeds < 2:
            return (HOLDS if self.mean <= threshold else FAILS) + " (one seed)"
        return HOLDS if self.high <= threshold else FAILS if self.low > threshold else INCONCLUSIVE

    def text(self, digits: int = 3, scale: float = 1.0) -> str:
        """'0.012 [0.004, 0.020]', or '0.012 (one seed)'."""
        if self.seeds < 2:
            return f"{rounded(scale * self.mean, digits)} (one seed)"
        return (f"{rounded(scale * self.mean, digits)} [{rounded(scale * self.low, digits)}, "
                f"{rounded(scale * self.high, digits)}]")


def rounded(value: float, digits: int) -> str:
    """A value at `digits` decimals, with no minus sign on a value that rounds to zero ('0.00', not '-0.00')."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def t_quantile(dof: float) -> float:
    """The 97.5 % quantile of Student's t at `dof` degrees of freedom, fractional ones (Welch's) taken as they are."""
    if not dof > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {dof!r}")
    from scipy import stats  # here, not at the top: every run's notebooks import this package, few need scipy.stats

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof))


def interval(values: Sequence[float]) -> Interval:
    """Mean of per-seed values and its exact two-sided 95 % t-interval."""
    values = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(values) == 0:
        raise ValueError("no values to summarise")
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, math.nan, math.nan, len(values))
    half = t_quantile(len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, len(values))


def difference(first: Sequence[float], second: Sequence[float]) -> Interval:
    """Mean of first minus mean of second (independent seeds) with Welch's 95 % t-interval, its degrees of freedom
    fractional (Welch-Satterthwaite)."""
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    mean = float(a.mean() - b.mean())
    seeds = min(len(a), len(b))
    if seeds < 2:
        return Interval(mean, math.nan, math.nan, seeds)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    spread = math.sqrt(va + vb)
    if spread == 0:
        return Interval(mean, mean, mean, seeds)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(dof) * spread
    return Interval(mean, mean - half, mean + half, seeds)


def direction(gap: Interval) -> str:
    """A difference's interval in a word: 'lower' or 'higher' where it excludes zero, else 'not clearly
    different' ('one seed' where it rests on one)."""
    if gap.seeds < 2:
        return "one seed"
    return "lower" if gap.below(0.0) == HOLDS else "higher" if gap.above(0.0) == HOLDS else "not clearly different"


def combine(verdicts: Sequence[str]) -> str:
    """One verdict over several (datasets): FAILS if any fails, HOLDS if all hold, else INCONCLUSIVE; the
    one-seed mark is kept."""
    plain = [v.replace(" (one seed)", "") for v in verdicts]
    mark = " (one seed)" if any(v.endswith("(one seed)") for v in verdicts) else ""
    if not plain:
        raise ValueError("no verdicts to combine")
    if FAILS in plain:
        return FAILS + mark
    return (HOLDS if all(v == HOLDS for v in plain) else INCONCLUSIVE) + mark
