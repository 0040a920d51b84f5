"""Export a stored study to the experiment trackers people already browse: TensorBoard
event files (one folder per run) and MLflow runs. Both are optional extras, imported only
here: ``pip install 'actlab[tensorboard]'`` / ``'actlab[mlflow]'``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from actlab.study.store import StudyView

EPOCH_SCALARS = {"train_loss": "loss/train", "val_loss": "loss/val", "test_loss": "loss/test",
                 "train_acc": "accuracy/train", "val_acc": "accuracy/val",
                 "test_acc": "accuracy/test", "epoch_lr": "lr", "epoch_time": "time/epoch_s",
                 "images_per_s": "time/images_per_s", "peak_memory_mb": "memory/peak_mb"}
RUN_FIELDS = ("model", "dataset", "act", "init", "optimizer", "lr", "seed", "epochs")


class ExportError(RuntimeError):
    """The exporter's library is missing or refuses the destination."""


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _run_name(run: pd.Series) -> str:
    return f"{run['model']}-{run['act']}-{run['init']}-lr{run['lr']:g}-s{run['seed']}-" \
           f"{run['run_id']}"


def export_tensorboard(view: StudyView, folder: Path) -> int:
    """One event-file folder per run under ``folder``: per-epoch scalars (losses,
    accuracies, lr, time, memory), learnable-AF parameters and layer measurements, and
    the run's fields with its final metrics as hyperparameters. Returns the run count."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ExportError("TensorBoard export needs the tensorboard package: "
                          "`pip install 'actlab[tensorboard]'`") from exc
    runs, epochs, params, layers = view.runs(), view.epochs(), view.params(), view.layers()
    exported = 0
    for _, run in runs[runs["status"].isin(["completed", "diverged"])].iterrows():
        with SummaryWriter(log_dir=str(folder / _run_name(run))) as writer:
            for _, row in epochs[epochs["run_id"] == run["run_id"]].iterrows():
                for column, tag in EPOCH_SCALARS.items():
                    if column in row and _finite(row[column]):
                        writer.add_scalar(tag, row[column], int(row["epoch"]))
            for _, row in params[params["run_id"] == run["run_id"]].iterrows():
                writer.add_scalar(f"params/{row['site']}/{row['name']}", row["value"],
                                  int(row["epoch"]))
            for _, row in layers[layers["run_id"] == run["run_id"]].iterrows():
                if _finite(row["value"]):
                    writer.add_scalar(f"layers/{row['layer']}/{row['metric']}", row["value"],
                                      int(row["epoch"]))
            hparams = {field: (run[field] if _finite(run[field]) else str(run[field]))
                       for field in RUN_FIELDS if field in run}
            finals = {f"final/{k}": float(run[k]) for k in ("test_acc", "test_loss",
                                                            "best_test_acc", "test_top3")
                      if k in run and _finite(run[k])}
            writer.add_hparams(hparams, finals or {"final/diverged": 1.0}, run_name=".")
        exported += 1
    return exported


def export_mlflow(view: StudyView, tracking_uri: str, experiment: str | None = None) -> int:
    """One MLflow run per finished actlab run in experiment ``experiment`` (default: the
    study's name): the run's fields as params, per-epoch metrics with the epoch as step,
    final metrics, and its status, id and divergence as tags. Returns the run count."""
    try:
        import mlflow
    except ImportError as exc:
        raise ExportError("MLflow export needs mlflow: `pip install 'actlab[mlflow]'`") from exc
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment or view.name)
    runs, epochs = view.runs(), view.epochs()
    exported = 0
    for _, run in runs[runs["status"].isin(["completed", "diverged"])].iterrows():
        with mlflow.start_run(run_name=_run_name(run)):
            mlflow.log_params({field: run[field] for field in RUN_FIELDS if field in run})
            mlflow.set_tags({"actlab.run_id": run["run_id"], "actlab.status": run["status"],
                             "actlab.study": view.name,
                             **({"actlab.diverged": f"epoch {int(run['diverged_epoch'])}: "
                                                    f"{run['reason']}"}
                                if run["status"] == "diverged" else {})})
            for _, row in epochs[epochs["run_id"] == run["run_id"]].iterrows():
                metrics = {tag: float(row[column]) for column, tag in EPOCH_SCALARS.items()
                           if column in row and _finite(row[column])}
                mlflow.log_metrics(metrics, step=int(row["epoch"]))
            finals = {f"final_{k}": float(v) for k, v in run.items()
                      if k.startswith(("test_", "best_")) and _finite(v)}
            if finals:
                mlflow.log_metrics(finals)
        exported += 1
    return exported
