"""Analysis of stored runs: aggregation and statistics across seeds."""

from actlab.analysis.aggregate import curve_band, format_mean_std, pivot_mean_std, summarize

__all__ = ["curve_band", "format_mean_std", "pivot_mean_std", "summarize"]
