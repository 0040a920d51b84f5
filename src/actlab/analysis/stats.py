"""Statistics across seeds and tasks: pandas and numpy in, pandas out, no plotting.

Per cell: mean, std, median, the interquartile mean and a bootstrap confidence interval
(Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the Statistical
Precipice", recommend IQM and bootstrap CIs over mean ± std for few seeds).
Comparisons follow Demšar 2006 ("Statistical Comparisons of Classifiers over Multiple
Data Sets", JMLR 7): Wilcoxon signed-rank for two methods, Friedman with average ranks
and the Nemenyi critical difference for many; Holm 1979 for multiple comparisons
(Benavoli et al. 2016 recommend Wilcoxon-Holm post-hoc over Nemenyi's mean ranks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from actlab.paired import (
    Posterior,
    ci_half_width,
    detectable_difference,
    seeds_needed,
    verdict,
)


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50% (scipy's 25% trimmed mean)."""
    values = np.asarray(values, dtype=float)
    return float(stats.trim_mean(values, 0.25)) if len(values) else math.nan


def bootstrap_ci(values: Sequence[float], statistic: str = "mean", confidence: float = 0.95,
                 resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` ('mean', 'median' or 'iqm') over
    ``values`` (seeded, so reports are reproducible). NaN for fewer than 2 values; the
    point itself when all values are equal (there is no spread to resample)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return (math.nan, math.nan)
    if np.all(values == values[0]):
        return (float(values[0]), float(values[0]))
    function = {"mean": np.mean, "median": np.median,
                "iqm": lambda v, axis: stats.trim_mean(v, 0.25, axis=axis)}[statistic]
    result = stats.bootstrap((values,), function, confidence_level=confidence,
                             n_resamples=resamples, method="percentile",
                             rng=np.random.default_rng(seed), vectorized=True)
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def cell_statistics(runs: pd.DataFrame, metric: str, by: list[str], confidence: float = 0.95,
                    higher_is_better: bool = True) -> pd.DataFrame:
    """Per cell (``by``) over its completed runs: n, mean, std, median, IQM, bootstrap CI
    of the mean, best and worst seed; plus the diverged and failed counts and the
    divergence rate over all the cell's runs (divergent runs are counted, never averaged
    in)."""
    rows = []
    for key, cell in runs.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        values = cell.loc[cell["status"] == "completed", metric].astype(float).dropna()
        low, high = bootstrap_ci(values.to_numpy(), confidence=confidence)
        worst = values.min() if higher_is_better else values.max()
        best = values.max() if higher_is_better else values.min()
        diverged = int((cell["status"] == "diverged").sum())
        rows.append({
            **dict(zip(by, key, strict=True)), "n": len(values),
            "mean": values.mean() if len(values) else math.nan,
            "std": values.std(ddof=1) if len(values) > 1 else math.nan,
            "median": values.median() if len(values) else math.nan,
            "iqm": iqm(values.to_numpy()), "ci_low": low, "ci_high": high,
            "best": best, "worst": worst, "diverged": diverged,
            "failed": int((cell["status"] == "failed").sum()),
            "divergence_rate": diverged / len(cell),
        })
    return pd.DataFrame(rows)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): the i-th smallest of m p-values
    is multiplied by (m - i + 1), made monotone, and capped at 1. NaNs stay NaN and do
    not count towards m."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        adjusted[index] = running
    return adjusted


def paired_test(a: Sequence[float], b: Sequence[float], test: str = "wilcoxon") -> float:
    """Two-sided p-value that ``a`` and ``b`` differ: 'wilcoxon' (signed-rank on the
    paired differences) or 'welch' (Welch's unequal-variance t-test, unpaired). NaN
    where the test is undefined (fewer than 2 pairs; no non-zero difference)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if test == "welch":
        if len(a) < 2 or len(b) < 2 or (np.var(a) == 0 and np.var(b) == 0):
            return math.nan
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    if test != "wilcoxon":
        raise ValueError(f"unknown test {test!r}: use 'wilcoxon' or 'welch'")
    differences = a - b
    if len(differences) < 2 or np.all(differences == 0):
        return math.nan
    return float(stats.wilcoxon(a, b).pvalue)


def probability_of_improvement(a: Sequence[float], b: Sequence[float]) -> float:
    """P(X > Y) + ½·P(X = Y) for X drawn from ``a`` and Y from ``b`` (the Mann-Whitney U
    statistic over n·m; Agarwal et al. 2021). 0.5: no difference; 1: ``a`` always
    better."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(a) or not len(b):
        return math.nan
    greater = (a[:, None] > b[None, :]).sum()
    ties = (a[:, None] == b[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(a) * len(b)))


def compare_to_baseline(runs: pd.DataFrame, metric: str, cell: list[str],
                        baseline: dict[str, object], group: list[str] | None = None,
                        pair_on: str = "seed", test: str = "wilcoxon", alpha: float = 0.05,
                        higher_is_better: bool = True, rope: float | None = None,
                        effect: float | None = None, posterior: Posterior = "ttest"
                        ) -> pd.DataFrame:
    """Every cell against the baseline cell of its group (e.g. ``baseline={'act': 'relu',
    'init': 'he_normal'}`` per model and dataset), over completed runs matched on
    ``pair_on`` (the seed): mean difference (cell - baseline), the p-value of ``test``,
    the Holm-adjusted p-value within the group, the probability that the cell improves
    on the baseline, and whether the difference is significant at ``alpha``.

    With a ``rope`` (in the metric's units) each row also gets the Bayesian verdict of
    the paired differences (:func:`actlab.paired.verdict`: p_worse, p_equivalent,
    p_better, verdict), the paired std, the 95% CI half-width of the difference, the
    smallest difference detectable at 80% power with the pairs run (``detectable``) and,
    for ``effect`` (default: the rope), the seeds that difference needs
    (``seeds_needed``)."""
    group = group or []
    done = runs[runs["status"] == "completed"]
    rows = []
    for group_key, members in (done.groupby(group, sort=False) if group else [((), done)]):
        group_key = group_key if isinstance(group_key, tuple) else (group_key,)
        is_base = np.logical_and.reduce([members[k] == v for k, v in baseline.items()])
        base = members[is_base].set_index(pair_on)[metric]
        if base.empty:
            continue
        start = len(rows)
        for key, other in members[~is_base].groupby(cell, sort=False):
            key = key if isinstance(key, tuple) else (key,)
            values = other.set_index(pair_on)[metric]
            paired = pd.concat([values, base], axis=1, keys=["cell", "base"],
                               join="inner").dropna()
            sign = 1.0 if higher_is_better else -1.0
            p = (paired_test(paired["cell"], paired["base"], "wilcoxon") if test == "wilcoxon"
                 else paired_test(values, base, "welch"))
            rows.append({
                **dict(zip(group, group_key, strict=True)),
                **dict(zip(cell, key, strict=True)), "n_pairs": len(paired),
                "mean": values.mean(), "baseline_mean": base.mean(),
                "difference": values.mean() - base.mean(), "p": p,
                "p_improvement": probability_of_improvement(sign * values, sign * base),
                **(_bayesian_and_power(sign * (paired["cell"] - paired["base"]), rope,
                                       effect, posterior, alpha)
                   if rope is not None else {}),
            })
        adjusted = holm([row["p"] for row in rows[start:]])
        for row, p_holm in zip(rows[start:], adjusted, strict=True):
            row["p_holm"] = p_holm
            row["significant"] = bool(p_holm < alpha) if not math.isnan(p_holm) else False
    return pd.DataFrame(rows)


def _bayesian_and_power(differences: pd.Series, rope: float, effect: float | None,
                        posterior: Posterior, alpha: float) -> dict[str, object]:
    """The verdict and power columns of one comparison (differences signed: + better)."""
    found = verdict(differences.to_numpy(), rope, posterior)
    n = len(differences)
    std = float(differences.std(ddof=1)) if n > 1 else math.nan
    needed = seeds_needed(effect if effect is not None else rope, std, alpha) \
        if n > 1 else None
    return {"p_worse": found.p_worse, "p_equivalent": found.p_equivalent,
            "p_better": found.p_better, "verdict": found.verdict, "paired_std": std,
            "ci_half_width": ci_half_width(differences.to_numpy()),
            "detectable": detectable_difference(std, n, alpha) if n > 1 else math.inf,
            "seeds_needed": needed}


def average_ranks(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Average rank of each method (column) over tasks (rows), 1 = best, ties sharing
    the mean rank (Demšar 2006, section 3.2.2)."""
    values = scores.to_numpy(dtype=float)
    ranks = stats.rankdata(-values if higher_is_better else values, axis=1)
    return pd.Series(ranks.mean(axis=0), index=scores.columns, name="average_rank")


@dataclass(frozen=True)
class FriedmanResult:
    statistic: float  # Friedman's chi-square
    pvalue: float
    iman_davenport: float  # F_F, the less conservative statistic Demšar recommends
    iman_davenport_pvalue: float
    average_ranks: pd.Series
    critical_difference: float  # Nemenyi CD at alpha


def friedman(scores: pd.DataFrame, alpha: float = 0.05, higher_is_better: bool = True
             ) -> FriedmanResult:
    """Friedman's test that all methods (columns) rank alike over tasks (rows), with
    Iman and Davenport's F and the Nemenyi critical difference (Demšar 2006, 3.2.2).
    The chi-square is scipy's, which corrects for ties (equal to Demšar's formula when
    there are none). Needs at least 3 methods and 2 tasks."""
    n, k = scores.shape
    if k < 3 or n < 2:
        raise ValueError(f"Friedman's test needs >= 3 methods and >= 2 tasks, got {k} "
                         f"methods on {n} tasks")
    values = scores.to_numpy(dtype=float)
    chi2, p = stats.friedmanchisquare(*(values if higher_is_better else -values).T)
    f_f, p_f = iman_davenport(float(chi2), n, k)
    return FriedmanResult(float(chi2), float(p), f_f, p_f,
                          average_ranks(scores, higher_is_better),
                          nemenyi_critical_difference(k, n, alpha))


def iman_davenport(chi2: float, n: int, k: int) -> tuple[float, float]:
    """Iman and Davenport's F_F = (n-1)·chi2 / (n(k-1) - chi2) with (k-1, (k-1)(n-1))
    degrees of freedom, and its p-value (Demšar 2006: less conservative than chi2)."""
    denominator = n * (k - 1) - chi2
    f_f = (n - 1) * chi2 / denominator if denominator > 0 else math.inf
    return float(f_f), float(stats.f.sf(f_f, k - 1, (k - 1) * (n - 1)))


def nemenyi_critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """CD = q_alpha · sqrt(k(k+1) / 6n), q_alpha the studentized range quantile over √2
    (Demšar 2006, eq. for the Nemenyi test; q_0.05 = 2.569 for k = 4)."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def pairwise_wilcoxon_holm(scores: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of methods (columns) compared over tasks (rows) with Wilcoxon's
    signed-rank test, Holm-adjusted over all pairs (Benavoli et al. 2016)."""
    methods = list(scores.columns)
    rows = []
    for i, first in enumerate(methods):
        for second in methods[i + 1:]:
            rows.append({"a": first, "b": second,
                         "p": paired_test(scores[first], scores[second], "wilcoxon")})
    table = pd.DataFrame(rows, columns=["a", "b", "p"])
    table["p_holm"] = holm(table["p"].to_numpy()) if len(table) else []
    table["significant"] = table["p_holm"] < alpha
    return table
