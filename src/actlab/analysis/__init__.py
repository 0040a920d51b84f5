"""Analysis of stored runs: aggregation and statistics across seeds and tasks."""

from actlab.analysis.aggregate import curve_band
from actlab.analysis.stats import (
    FriedmanResult,
    average_ranks,
    bootstrap_ci,
    cell_statistics,
    compare_to_baseline,
    friedman,
    holm,
    iqm,
    nemenyi_critical_difference,
    paired_test,
    pairwise_wilcoxon_holm,
    probability_of_improvement,
)

__all__ = [
    "FriedmanResult",
    "average_ranks",
    "bootstrap_ci",
    "cell_statistics",
    "compare_to_baseline",
    "curve_band",
    "friedman",
    "holm",
    "iqm",
    "nemenyi_critical_difference",
    "paired_test",
    "pairwise_wilcoxon_holm",
    "probability_of_improvement",
]
