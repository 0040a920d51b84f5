"""Paired comparisons of a cell with its baseline: Bayesian verdicts with a region of
practical equivalence, the confidence interval of the difference, and power (how large a
difference the seeds run so far can detect, how many seeds a named difference needs).
Pure numpy/scipy (scipy imported on first use, so the fast commands never load it): the
study's stopping rules (study/adaptive.py) and the report's comparisons both use it.

A *verdict* compares a cell with its baseline over seed-paired differences d_i = cell_i -
baseline_i (signed so that positive is better). Following Benavoli, Corani, Demšar and
Zaffalon 2017 ("Time for a change: a tutorial for comparing multiple classifiers through
Bayesian analysis", JMLR 18), the posterior of the mean difference is split into three
regions by the ROPE (region of practical equivalence) [-r, r]: P(worse) = P(mu < -r),
P(equivalent) = P(-r <= mu <= r), P(better) = P(mu > r). The verdict is the region whose
probability reaches the level (0.95), else *undecided*.

Two posteriors are offered:

* ``ttest`` (the default): the Bayesian correlated t-test (Corani & Benavoli 2015, "A
  Bayesian approach for comparing cross-validated algorithms on multiple data sets",
  Machine Learning 100; section 3 of the 2017 tutorial). Under a flat prior the posterior
  of mu is Student's t with n - 1 degrees of freedom, location mean(d) and scale
  sqrt(var(d) (1/n + rho/(1 - rho))); rho is the correlation between the differences,
  1/k for k-fold cross-validation (the Nadeau-Bengio correction) and 0 for runs that
  differ only in their seed, as here. Closed form, so it is exact and fast enough to be
  re-evaluated at every step of an adaptive study.
* ``signed_rank``: the Bayesian signed-rank test (Benavoli et al. 2014, "A Bayesian
  Wilcoxon signed-rank test based on the Dirichlet process", ICML), a Dirichlet process
  with a pseudo-observation at 0 of weight ``prior``; the probabilities are the shares of
  posterior draws in which each region has the largest mass (the tutorial's section 4).
  It assumes nothing about the shape of the differences, but with few seeds it is
  conservative and its probabilities are Monte Carlo estimates (seeded).

Power follows the paired (one-sample) t-test at two-sided level alpha with the
noncentral t distribution (Cohen 1988, "Statistical Power Analysis for the Behavioral
Sciences", ch. 2): the power to detect a mean difference delta with n pairs and paired
standard deviation s is P(|T| > t_{1-alpha/2, n-1}) for T ~ t'(n - 1, delta sqrt(n) / s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: The posterior probability a region needs for a verdict.
LEVEL = 0.95
VERDICTS = ("better", "equivalent", "worse", "undecided")
Posterior = Literal["ttest", "signed_rank"]


@dataclass(frozen=True)
class Verdict:
    """P(worse), P(equivalent), P(better) of a cell against its baseline, and the verdict
    at ``level`` ('better', 'equivalent', 'worse' or 'undecided')."""

    p_worse: float
    p_equivalent: float
    p_better: float
    verdict: str
    n: int  # pairs

    @classmethod
    def undecided(cls, n: int) -> Verdict:
        return cls(math.nan, math.nan, math.nan, "undecided", n)


def correlated_ttest(differences: Sequence[float], rope: float, rho: float = 0.0
                     ) -> tuple[float, float, float]:
    """(P(worse), P(equivalent), P(better)) of the mean of ``differences`` under the
    Bayesian correlated t-test with correlation ``rho`` (0 for independent seeds). With
    no spread the posterior is the point mean(d). Needs at least 2 differences."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n < 2:
        raise ValueError(f"the correlated t-test needs at least 2 paired differences, got {n}")
    if not 0 <= rho < 1:
        raise ValueError(f"rho must be in [0, 1), got {rho}")
    from scipy.special import stdtr  # Student's t CDF: a ufunc, 100x a frozen stats.t

    mean, variance = float(d.mean()), float(d.var(ddof=1))
    if variance == 0:
        worse, better = float(mean < -rope), float(mean > rope)
        if rope == 0 and mean == 0:  # the point sits on the boundary: half each side
            worse = better = 0.5
        return worse, 1.0 - worse - better, better
    scale = math.sqrt(variance * (1 / n + rho / (1 - rho)))
    worse = float(stdtr(n - 1, (-rope - mean) / scale))
    better = float(stdtr(n - 1, (mean - rope) / scale))  # P(mu > rope), by symmetry
    return worse, max(0.0, 1.0 - worse - better), better


def signed_rank(differences: Sequence[float], rope: float, prior: float = 0.5,
                samples: int = 50_000, seed: int = 0) -> tuple[float, float, float]:
    """(P(worse), P(equivalent), P(better)) under the Bayesian signed-rank test: Dirichlet
    weights w over the differences and a pseudo-observation 0 of weight ``prior``; per
    draw the mass of the Walsh averages (d_i + d_j)/2 below -rope, inside and above
    (ties at the boundary count half); each probability is the share of draws in which
    that region has the largest mass."""
    d = np.concatenate([[0.0], np.asarray(differences, dtype=float)])
    if len(d) < 3:
        raise ValueError(f"the signed-rank test needs at least 2 paired differences, got "
                         f"{len(d) - 1}")
    sums = d[:, None] + d[None, :]

    def heaviside(values: np.ndarray) -> np.ndarray:
        return (values > 2 * rope) + 0.5 * (values == 2 * rope)

    alpha = np.ones(len(d))
    alpha[0] = prior
    weights = np.random.default_rng(seed).dirichlet(alpha, samples)
    below = np.einsum("si,ij,sj->s", weights, heaviside(-sums), weights, optimize=True)
    above = np.einsum("si,ij,sj->s", weights, heaviside(sums), weights, optimize=True)
    masses = np.stack([below, 1.0 - below - above, above], axis=1)
    if rope == 0:  # no equivalence region: only the two sides compete
        masses[:, 1] = -np.inf
    winners = np.bincount(masses.argmax(axis=1), minlength=3) / samples
    return float(winners[0]), float(winners[1]), float(winners[2])


def verdict(differences: Sequence[float], rope: float, posterior: Posterior = "ttest",
            level: float = LEVEL) -> Verdict:
    """The verdict on paired ``differences`` (positive = better) with a ROPE of
    ``rope`` in the same units: the region whose posterior probability reaches
    ``level``, else 'undecided' (also with fewer than 2 finite differences)."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return Verdict.undecided(len(d))
    if posterior == "ttest":
        worse, equivalent, better = correlated_ttest(d, rope)
    elif posterior == "signed_rank":
        worse, equivalent, better = signed_rank(d, rope)
    else:
        raise ValueError(f"unknown posterior {posterior!r}: use 'ttest' or 'signed_rank'")
    chosen = "undecided"
    for name, probability in (("better", better), ("equivalent", equivalent),
                              ("worse", worse)):
        if probability >= level:
            chosen = name
    return Verdict(worse, equivalent, better, chosen, len(d))


def ci_half_width(differences: Sequence[float], confidence: float = 0.95) -> float:
    """Half-width of the t confidence interval of the mean paired difference,
    t_{(1+c)/2, n-1} s / sqrt(n); inf with fewer than 2 differences."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n < 2:
        return math.inf
    from scipy.special import stdtrit  # Student's t quantile

    return float(stdtrit(n - 1, (1 + confidence) / 2) * d.std(ddof=1) / math.sqrt(n))


def power(delta: float, std: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test at level ``alpha`` to detect a mean
    difference ``delta`` with ``n`` pairs whose differences have std ``std``."""
    if n < 2:
        return 0.0
    if std == 0:
        return 1.0 if delta != 0 else alpha
    from scipy import stats

    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    noncentrality = abs(delta) * math.sqrt(n) / std
    upper = float(stats.nct.sf(critical, df, noncentrality))
    # The far tail against the difference: scipy's nct.cdf returns NaN where it is below
    # about 1e-12 (df 1, noncentrality 8), far below anything the sum could show.
    lower = float(stats.nct.cdf(-critical, df, noncentrality))
    return upper + (lower if math.isfinite(lower) else 0.0)


def detectable_difference(std: float, n: int, alpha: float = 0.05, target: float = 0.8
                          ) -> float:
    """The smallest mean difference the two-sided paired t-test detects with
    probability ``target`` from ``n`` pairs of std ``std``; inf with fewer than 2."""
    if n < 2 or not math.isfinite(std):
        return math.inf
    if std == 0:
        return 0.0
    from scipy import optimize

    high = std
    while power(high, std, n, alpha) < target:
        high *= 2
    return float(optimize.brentq(lambda delta: power(delta, std, n, alpha) - target,
                                 0.0, high, xtol=1e-10 * std))


def seeds_needed(effect: float, std: float, alpha: float = 0.05, target: float = 0.8,
                 limit: int = 100_000) -> int | None:
    """The fewest pairs (seeds) with which the two-sided paired t-test detects a mean
    difference ``effect`` with probability ``target`` (at least 2); None when the std
    is unknown or ``limit`` pairs do not suffice."""
    if not math.isfinite(std) or effect == 0:
        return None
    if std == 0:
        return 2
    low, high = 2, 2
    while power(effect, std, high, alpha) < target:
        low, high = high, high * 2
        if high > limit:
            return None
    while low < high:  # power grows with n: the first n that reaches the target
        middle = (low + high) // 2
        if power(effect, std, middle, alpha) >= target:
            high = middle
        else:
            low = middle + 1
    return high
