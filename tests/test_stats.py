"""The statistics of actlab.analysis.stats against hand computations, scipy and the
textbook values of Demšar 2006."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from actlab.analysis.stats import (
    average_ranks,
    bootstrap_ci,
    cell_statistics,
    compare_to_baseline,
    friedman,
    holm,
    iman_davenport,
    iqm,
    nemenyi_critical_difference,
    paired_test,
    pairwise_wilcoxon_holm,
    probability_of_improvement,
)


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm([5.0]) == 5.0
    assert math.isnan(iqm([]))


def test_bootstrap_ci_contains_the_mean_and_is_reproducible() -> None:
    values = np.random.default_rng(1).normal(0.9, 0.02, size=10)
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_ci(values)  # seeded
    wide = bootstrap_ci(2 * values)  # twice the spread, same resamples: twice the width
    assert wide[1] - wide[0] == pytest.approx(2 * (high - low))
    median_low, median_high = bootstrap_ci(values, statistic="median")
    assert median_low <= np.median(values) <= median_high
    assert all(math.isnan(v) for v in bootstrap_ci([0.5]))
    assert bootstrap_ci([0.7, 0.7, 0.7]) == (0.7, 0.7)


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    trials = 200
    hits = 0
    for trial in range(trials):
        low, high = bootstrap_ci(rng.normal(1.0, 1.0, size=30), resamples=2000, seed=trial)
        hits += low <= 1.0 <= high
    assert 0.88 <= hits / trials <= 0.99  # percentile bootstrap under-covers a little


def test_holm_by_hand() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = holm([0.01, float("nan"), 0.02])
    assert math.isnan(adjusted[1])
    assert adjusted[[0, 2]] == pytest.approx([0.02, 0.02])  # m = 2: the NaN does not count
    p = np.random.default_rng(3).uniform(size=20)
    assert np.all(holm(p) >= p)


def test_paired_tests_are_scipys() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(0.90, 0.01, 8), rng.normal(0.89, 0.01, 8)
    assert paired_test(a, b) == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert paired_test(a, b, "welch") == pytest.approx(
        stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert math.isnan(paired_test(a[:1], b[:1]))
    assert math.isnan(paired_test(a, a))  # no non-zero difference
    with pytest.raises(ValueError, match="unknown test"):
        paired_test(a, b, "anova")


def test_probability_of_improvement_is_u_over_nm() -> None:
    a, b = [0.9, 0.8, 0.7], [0.75, 0.7, 0.6, 0.5]
    # pairs a > b: 0.9 beats 4, 0.8 beats 4, 0.7 beats 2 and ties 1 -> 10.5 / 12
    assert probability_of_improvement(a, b) == pytest.approx(10.5 / 12)
    u = stats.mannwhitneyu(a, b).statistic
    assert probability_of_improvement(a, b) == pytest.approx(u / 12)
    assert probability_of_improvement(b, a) == pytest.approx(1 - 10.5 / 12)


def test_average_ranks_share_ties() -> None:
    scores = pd.DataFrame({"relu": [0.9, 0.8], "mish": [0.9, 0.85], "tanh": [0.7, 0.6]})
    ranks = average_ranks(scores)
    assert ranks.to_dict() == {"relu": pytest.approx(1.75), "mish": pytest.approx(1.25),
                               "tanh": 3.0}
    assert average_ranks(scores, higher_is_better=False)["tanh"] == 1.0


def test_friedman_and_nemenyi_against_demsar_2006() -> None:
    # Demšar 2006, section 3.2.2: 4 methods on 14 data sets with average ranks 3.143,
    # 2.000, 2.893 and 1.964 give chi2_F = 9.28, F_F = 3.69 and a Nemenyi CD of 1.25
    # (q_0.05 = 2.569 for k = 4).
    k, n = 4, 14
    ranks = np.array([3.143, 2.000, 2.893, 1.964])
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(ranks ** 2) - k * (k + 1) ** 2 / 4)
    assert chi2 == pytest.approx(9.28, abs=0.01)
    assert iman_davenport(chi2, n, k)[0] == pytest.approx(3.69, abs=0.01)
    assert nemenyi_critical_difference(4, 14) == pytest.approx(1.25, abs=0.005)
    assert nemenyi_critical_difference(4, 14) / math.sqrt(4 * 5 / (6 * 14)) == pytest.approx(
        2.569, abs=0.001)
    assert nemenyi_critical_difference(10, 14) / math.sqrt(10 * 11 / (6 * 14)) == pytest.approx(
        3.164, abs=0.001)  # Demšar's Table 5(a)


def test_friedman_without_ties_equals_the_textbook_formula() -> None:
    rng = np.random.default_rng(4)
    scores = pd.DataFrame(rng.uniform(size=(12, 5)), columns=list("abcde"))
    result = friedman(scores)
    n, k = scores.shape
    ranks = result.average_ranks.to_numpy()
    by_hand = 12 * n / (k * (k + 1)) * (np.sum(ranks ** 2) - k * (k + 1) ** 2 / 4)
    assert result.statistic == pytest.approx(by_hand)
    assert result.pvalue == pytest.approx(stats.chi2.sf(by_hand, k - 1))
    with pytest.raises(ValueError, match=">= 3 methods"):
        friedman(scores[["a", "b"]])


def test_pairwise_wilcoxon_holm_finds_the_clear_difference() -> None:
    rng = np.random.default_rng(5)
    base = rng.uniform(0.6, 0.9, size=15)
    wobble = 0.001 * np.array([1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 0.5])
    scores = pd.DataFrame({"good": base + 0.05, "same": base + wobble, "base": base})
    table = pairwise_wilcoxon_holm(scores).set_index(["a", "b"])
    assert table.loc[("good", "base"), "significant"]
    assert table.loc[("good", "same"), "significant"]
    assert not table.loc[("same", "base"), "significant"]
    assert (table["p_holm"] >= table["p"]).all()


def runs_frame() -> pd.DataFrame:
    """Two models x three AFs x 6 seeds; mish +2 points over relu, tanh equal to relu;
    one tanh seed diverged on each model."""
    rng = np.random.default_rng(6)
    rows = []
    for model in ("lenet5", "resnet20"):
        for seed in range(6):
            noise = rng.normal(0, 0.002)
            for act, shift in (("relu", 0.0), ("mish", 0.02), ("tanh", 0.0)):
                diverged = act == "tanh" and seed == 5
                rows.append({"model": model, "act": act, "init": "he_normal", "seed": seed,
                             "status": "diverged" if diverged else "completed",
                             "test_acc": math.nan if diverged else
                             0.9 + shift + noise + rng.normal(0, 0.0005)})
    return pd.DataFrame(rows)


def test_cell_statistics() -> None:
    runs = runs_frame()
    table = cell_statistics(runs, "test_acc", ["model", "act"]).set_index(["model", "act"])
    relu = runs[(runs.model == "lenet5") & (runs.act == "relu")]["test_acc"]
    row = table.loc[("lenet5", "relu")]
    assert row["n"] == 6
    assert row["mean"] == pytest.approx(relu.mean())
    assert row["std"] == pytest.approx(relu.std(ddof=1))
    assert row["median"] == pytest.approx(relu.median())
    assert row["ci_low"] < row["mean"] < row["ci_high"]
    assert row["worst"] == relu.min()
    tanh = table.loc[("lenet5", "tanh")]
    assert (tanh["n"], tanh["diverged"]) == (5, 1)
    assert tanh["divergence_rate"] == pytest.approx(1 / 6)


def test_compare_to_baseline_with_holm_per_group() -> None:
    table = compare_to_baseline(runs_frame(), "test_acc", cell=["act"],
                                baseline={"act": "relu"}, group=["model"])
    table = table.set_index(["model", "act"])
    assert len(table) == 4  # mish and tanh against relu, on each model
    mish = table.loc[("lenet5", "mish")]
    assert mish["difference"] == pytest.approx(0.02, abs=0.002)
    assert mish["n_pairs"] == 6
    assert mish["p"] == pytest.approx(0.03125)  # exact Wilcoxon, 6 pairs all positive
    # Holm over the group's 2 comparisons doubles the smallest p: with 6 seeds even a
    # uniform improvement is not significant by Wilcoxon at 0.05 (Welch's t finds it).
    assert mish["p_holm"] == pytest.approx(0.0625)
    assert not mish["significant"]
    assert mish["p_improvement"] == 1.0
    tanh = table.loc[("lenet5", "tanh")]
    assert tanh["n_pairs"] == 5  # the diverged seed has no pair
    assert not tanh["significant"]
    welch = compare_to_baseline(runs_frame(), "test_acc", cell=["act"],
                                baseline={"act": "relu"}, group=["model"], test="welch")
    assert welch.set_index(["model", "act"]).loc[("lenet5", "mish"), "significant"]
