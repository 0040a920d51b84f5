"""Aggregation across seeds: pandas in, pandas out, no plotting."""

from __future__ import annotations

import pandas as pd


def summarize(runs: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    """Per cell (``by``): mean, std, n of ``metric`` over completed runs, and run counts.

    ``n`` counts the completed runs behind the mean; ``diverged`` and ``failed`` count the
    runs left out of it, so a cell that lost seeds to divergence says so.
    """
    if runs.empty:
        return pd.DataFrame(columns=[*by, "mean", "std", "n", "diverged", "failed"])
    completed = runs[runs["status"] == "completed"]
    stats = (completed.groupby(by, sort=False)[metric].agg(["mean", "std", "count"])
             .rename(columns={"count": "n"}))
    status = runs.groupby(by, sort=False)["status"]
    stats = stats.reindex(status.size().index)
    stats["n"] = stats["n"].fillna(0).astype(int)
    stats["diverged"] = status.apply(lambda s: int((s == "diverged").sum()))
    stats["failed"] = status.apply(lambda s: int((s == "failed").sum()))
    return stats.reset_index()


def format_mean_std(mean: float, std: float, n: int, scale: float = 100.0, digits: int = 2
                    ) -> str:
    """``'91.23 ± 0.41 (n=3)'``; a cell without completed runs reads ``'— (n=0)'``."""
    if n == 0 or pd.isna(mean):
        return "— (n=0)"
    spread = "" if n < 2 or pd.isna(std) else f" ± {std * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f}{spread} (n={n})"


def pivot_mean_std(summary: pd.DataFrame, rows: str, cols: str, scale: float = 100.0
                   ) -> pd.DataFrame:
    """A rows x cols table of ``mean ± std (n)`` strings, in first-appearance order."""
    cells = summary.assign(text=[format_mean_std(m, s, n, scale) for m, s, n in
                                 zip(summary["mean"], summary["std"], summary["n"], strict=True)])
    table = cells.pivot(index=rows, columns=cols, values="text")
    return table.reindex(index=list(dict.fromkeys(summary[rows])),
                         columns=list(dict.fromkeys(summary[cols])))


def curve_band(epochs: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    """Mean and std of ``metric`` per epoch and cell, across seeds (completed runs only)."""
    finished = epochs[epochs["status"] == "completed"]
    grouped = finished.groupby([*by, "epoch"], sort=False)[metric]
    return grouped.agg(["mean", "std", "count"]).reset_index()
