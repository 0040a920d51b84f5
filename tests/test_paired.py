"""Verdicts and power (actlab/paired.py) against the formulas of baycomp (Benavoli et
al. 2017's package), re-derived here from the papers on fixed data, and against the
power values of statsmodels' TTestPower and a Monte-Carlo estimate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from actlab.analysis.stats import compare_to_baseline
from actlab.paired import (
    ci_half_width,
    correlated_ttest,
    detectable_difference,
    power,
    seeds_needed,
    signed_rank,
    verdict,
)

#: Fixed paired differences (points): a cell about 0.6 points better, noisy.
DIFFERENCES = np.array([0.9, 0.2, 1.1, 0.4, -0.1, 0.8, 0.7, 1.0])


def baycomp_correlated_t(x: np.ndarray, y: np.ndarray, rope: float, rho: float
                         ) -> tuple[float, float, float]:
    """Corani & Benavoli 2015, eq. 8: the posterior of the mean of d = y - x is Student
    t(n - 1, mean(d), sqrt((1/n + rho/(1 - rho)) var(d))); the probabilities are its
    mass below -rope, inside and above rope (baycomp's CorrelatedTTest.probs)."""
    d = y - x
    n = len(d)
    scale = math.sqrt((1 / n + rho / (1 - rho)) * np.var(d, ddof=1))
    left = stats.t.cdf(-rope, n - 1, loc=d.mean(), scale=scale)
    right = 1 - stats.t.cdf(rope, n - 1, loc=d.mean(), scale=scale)
    return left, 1 - left - right, right


def baycomp_signed_rank(d: np.ndarray, rope: float, weights: np.ndarray
                        ) -> tuple[float, float, float]:
    """Benavoli et al. 2014 / the 2017 tutorial, section 4, one draw at a time: per
    Dirichlet draw w over (0, d_1..d_n), the mass sum_ij w_i w_j H((d_i + d_j) - 2 rope)
    above and below; a region's probability is the share of draws where it is largest."""
    z = np.concatenate([[0.0], d])
    wins = np.zeros(3)
    for w in weights:
        above = below = 0.0
        for i in range(len(z)):
            for j in range(len(z)):
                s = z[i] + z[j]
                above += w[i] * w[j] * ((s > 2 * rope) + 0.5 * (s == 2 * rope))
                below += w[i] * w[j] * ((-s > 2 * rope) + 0.5 * (-s == 2 * rope))
        wins[np.argmax([below, 1 - below - above, above])] += 1
    return tuple(wins / len(weights))


@pytest.mark.parametrize("rope", [0.0, 0.25, 0.5])
def test_correlated_ttest_matches_the_formula_for_seeds_and_for_cross_validation(rope) -> None:
    baseline = np.linspace(90, 91, len(DIFFERENCES))
    cell = baseline + DIFFERENCES
    # Independent seeds: rho = 0; ten-fold cross-validation: rho = 1/10 (Nadeau-Bengio).
    for rho in (0.0, 0.1, 1 / len(DIFFERENCES)):
        expected = baycomp_correlated_t(baseline, cell, rope, rho)
        assert correlated_ttest(DIFFERENCES, rope, rho) == pytest.approx(expected, abs=1e-12)


def test_correlated_ttest_by_hand_and_without_spread() -> None:
    # d = 0, 1, 1, 2: mean 1, variance 2/3, posterior t(3, 1, sqrt(2/3) / 2);
    # P(mu > 0.5) = P(T3 > -0.5 / scale), P(mu < -0.5) = P(T3 < -1.5 / scale).
    scale = math.sqrt(2 / 3) / 2
    worse, equivalent, better = correlated_ttest([0.0, 1.0, 1.0, 2.0], 0.5)
    assert better == pytest.approx(stats.t.sf(-0.5 / scale, 3))
    assert worse == pytest.approx(stats.t.cdf(-1.5 / scale, 3))
    assert worse + equivalent + better == pytest.approx(1.0)
    assert correlated_ttest([1.0, 1.0, 1.0], 0.5) == (0.0, 0.0, 1.0)  # a point mass
    assert correlated_ttest([0.2, 0.2], 0.5) == (0.0, 1.0, 0.0)
    assert correlated_ttest([0.0, 0.0], 0.0) == (0.5, 0.0, 0.5)
    with pytest.raises(ValueError, match="at least 2"):
        correlated_ttest([1.0], 0.5)


@pytest.mark.parametrize("rope", [0.0, 0.3])
def test_signed_rank_matches_the_draw_by_draw_formula(rope) -> None:
    samples = 400
    alpha = np.ones(len(DIFFERENCES) + 1)
    alpha[0] = 0.5  # baycomp's prior: the pseudo-observation at 0 weighs 0.5
    weights = np.random.default_rng(7).dirichlet(alpha, samples)
    expected = baycomp_signed_rank(DIFFERENCES, rope, weights)
    assert signed_rank(DIFFERENCES, rope, samples=samples, seed=7) == pytest.approx(expected)


def test_verdicts_name_the_region_holding_95_percent() -> None:
    rng = np.random.default_rng(0)
    assert verdict(rng.normal(2.0, 0.3, 10), 0.5).verdict == "better"
    assert verdict(rng.normal(-2.0, 0.3, 10), 0.5).verdict == "worse"
    assert verdict(rng.normal(0.0, 0.1, 10), 0.5).verdict == "equivalent"
    assert verdict(rng.normal(0.5, 1.0, 3), 0.5).verdict == "undecided"
    few = verdict([1.0], 0.5)  # too few pairs: undecided, no probabilities
    assert few.verdict == "undecided"
    assert math.isnan(few.p_better)
    assert few.n == 1
    assert verdict([1.0, math.nan, 1.2, 0.9], 0.2).n == 3  # non-finite pairs left out
    found = verdict(DIFFERENCES, 0.25, posterior="signed_rank")
    assert found.p_worse + found.p_equivalent + found.p_better == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown posterior"):
        verdict(DIFFERENCES, 0.5, posterior="bayes")  # type: ignore[arg-type]


def test_ci_half_width_is_scipys_t_interval() -> None:
    low, high = stats.t.interval(0.95, len(DIFFERENCES) - 1, loc=DIFFERENCES.mean(),
                                 scale=stats.sem(DIFFERENCES))
    assert ci_half_width(DIFFERENCES) == pytest.approx((high - low) / 2)
    assert ci_half_width([1.0]) == math.inf


def test_power_matches_statsmodels_and_a_simulation() -> None:
    # statsmodels: TTestPower().solve_power(effect_size=0.5, alpha=0.05, power=0.8) =
    # 33.367 pairs, and 14.303 for 0.8 (one-sample, two-sided).
    assert seeds_needed(0.5, 1.0) == 34
    assert seeds_needed(0.8, 1.0) == 15
    assert seeds_needed(1.0, 2.0) == 34  # only the ratio matters
    assert power(0.5, 1.0, 34) == pytest.approx(0.8078, abs=5e-4)
    assert seeds_needed(1.0, 0.0) == 2
    assert seeds_needed(1.0, math.nan) is None
    assert seeds_needed(0.01, 10.0, limit=1000) is None
    delta = detectable_difference(1.0, 10)
    assert power(delta, 1.0, 10) == pytest.approx(0.8)
    assert detectable_difference(1.0, 1) == math.inf
    # Two pairs: the search passes noncentralities where scipy's far tail is NaN.
    assert power(4.0, 1.0, 2) < power(8.0, 1.0, 2) < 1.0
    assert power(detectable_difference(0.3, 2), 0.3, 2) == pytest.approx(0.8)
    # Monte Carlo: paired t-tests at the detectable difference reject 80% of the time.
    rng = np.random.default_rng(0)
    samples = rng.normal(delta, 1.0, size=(20_000, 10))
    rejected = stats.ttest_1samp(samples, 0.0, axis=1).pvalue < 0.05
    assert rejected.mean() == pytest.approx(0.8, abs=0.01)


def test_compare_to_baseline_adds_verdicts_and_power_in_metric_units() -> None:
    rows = [{"act": act, "seed": seed, "status": "completed",
             "test_acc": 0.9 + shift / 100 + 0.001 * seed}
            for seed in range(6) for act, shift in (("relu", 0.0), ("mish", 2.0),
                                                    ("tanh", 0.0))]
    table = compare_to_baseline(pd.DataFrame(rows), "test_acc", ["act"], {"act": "relu"},
                                rope=0.005, effect=0.01).set_index("act")
    assert table.loc["mish", "verdict"] == "better"  # +2 points, no spread
    assert table.loc["tanh", "verdict"] == "equivalent"
    assert table.loc["mish", "detectable"] == 0.0  # no spread: any difference shows
    assert table.loc["mish", "seeds_needed"] == 2
    plain = compare_to_baseline(pd.DataFrame(rows), "test_acc", ["act"], {"act": "relu"})
    assert "verdict" not in plain  # without a rope: the columns of before
