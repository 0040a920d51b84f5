"""Per-cell summaries beyond the final metric: model selection (best validation epoch vs
last epoch), the best epoch of a curve, convergence speed, cost, and the divergent runs.
Pandas in, pandas out; means are over completed runs, as in ``cell_statistics``."""

from __future__ import annotations

import pandas as pd


def _completed(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "completed"]


def _mean_by(frame: pd.DataFrame, by: list[str], columns: dict[str, str]) -> pd.DataFrame:
    """Mean of each source column (keys) as the named output column (values), per cell;
    columns the frame does not have are left out."""
    present = {source: name for source, name in columns.items() if source in frame}
    return (frame.groupby(by, sort=False)[list(present)].mean().rename(columns=present)
            .reset_index())


def last_vs_best(runs: pd.DataFrame, by: list[str], metric: str = "test_acc") -> pd.DataFrame:
    """The test metric at the last epoch beside the one of the best-validation epoch's
    weights (model selection on validation, never on test), with that epoch."""
    return _mean_by(_completed(runs), by, {
        metric: f"last_{metric}", f"best_{metric}": f"best_val_{metric}",
        "best_val_epoch": "best_val_epoch", "best_val_acc": "best_val_acc"})



def curve_peak(epochs: pd.DataFrame, by: list[str], metric: str = "val_acc",
               higher_is_better: bool = True) -> pd.DataFrame:
    """Per cell: the mean over runs of the curve's best value and the epoch it occurred
    in, and of the last epoch's value (the reference studies' "max accuracy (epoch)"
    next to the final one)."""
    done = epochs[epochs["status"] == "completed"].dropna(subset=[metric])
    if done.empty:
        return pd.DataFrame(columns=[*by, f"max_{metric}", "max_epoch", f"last_{metric}"])
    pick = (done.groupby("run_id")[metric].idxmax() if higher_is_better
            else done.groupby("run_id")[metric].idxmin())
    best = done.loc[pick.sort_values(), [*by, "run_id", metric, "epoch"]].rename(
        columns={metric: f"max_{metric}", "epoch": "max_epoch"})
    last = done.loc[done.groupby("run_id")["epoch"].idxmax(), ["run_id", metric]].rename(
        columns={metric: f"last_{metric}"})
    per_run = best.merge(last, on="run_id")
    return (per_run.groupby(by, sort=False)[[f"max_{metric}", "max_epoch", f"last_{metric}"]]
            .mean().reset_index())


def convergence(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Epochs and seconds until validation accuracy first reaches 90% / 95% of its final
    value, and the area under the training-loss curve (lower: faster descent)."""
    return _mean_by(_completed(runs), by, {
        "epochs_to_90": "epochs_to_90", "epochs_to_95": "epochs_to_95",
        "seconds_to_90": "seconds_to_90", "seconds_to_95": "seconds_to_95",
        "train_loss_auc": "train_loss_auc"})


def cost(runs: pd.DataFrame, epochs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Seconds per epoch, training images per second and peak memory per cell (all runs
    that trained, divergent ones included: their epochs cost the same)."""
    timing = _mean_by(epochs, by, {"epoch_time": "seconds_per_epoch",
                                   "images_per_s": "images_per_s"})
    memory = _mean_by(runs[runs["status"] != "failed"], by,
                      {"peak_memory_mb": "peak_memory_mb", "parameters": "parameters"})
    return timing.merge(memory, on=by, how="outer")


def divergent_runs(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Every diverged run with its cell, seed, epoch and reason."""
    columns = [*by, "seed", "diverged_epoch", "reason", "run_id"]
    columns = list(dict.fromkeys(c for c in columns if c in runs))
    return runs.loc[runs["status"] == "diverged", columns].reset_index(drop=True)
