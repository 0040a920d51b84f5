"""Aggregation across seeds: pandas in, pandas out, no plotting."""

from __future__ import annotations

import pandas as pd


def curve_band(epochs: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    """Mean and std of ``metric`` per epoch and cell, across seeds (completed runs only)."""
    finished = epochs[epochs["status"] == "completed"]
    grouped = finished.groupby([*by, "epoch"], sort=False)[metric]
    return grouped.agg(["mean", "std", "count"]).reset_index()
