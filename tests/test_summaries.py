"""Per-cell summaries (model selection, curve peaks, convergence, cost, divergent runs)
on small frames computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from actlab.analysis.summaries import convergence, cost, curve_peak, divergent_runs, last_vs_best

RUNS = pd.DataFrame([
    {"run_id": "a0", "act": "relu", "seed": 0, "status": "completed", "test_acc": 0.90,
     "best_test_acc": 0.91, "best_val_epoch": 2, "best_val_acc": 0.92, "epochs_to_90": 2,
     "train_loss_auc": 1.0, "peak_memory_mb": 100.0, "parameters": 10},
    {"run_id": "a1", "act": "relu", "seed": 1, "status": "completed", "test_acc": 0.80,
     "best_test_acc": 0.85, "best_val_epoch": 3, "best_val_acc": 0.86, "epochs_to_90": 3,
     "train_loss_auc": 2.0, "peak_memory_mb": 120.0, "parameters": 10},
    {"run_id": "b0", "act": "tanh", "seed": 0, "status": "diverged", "diverged_epoch": 2,
     "reason": "non-finite training loss", "peak_memory_mb": 90.0, "parameters": 10},
    {"run_id": "b1", "act": "tanh", "seed": 1, "status": "completed", "test_acc": 0.70,
     "best_test_acc": 0.70, "best_val_epoch": 3, "best_val_acc": 0.71, "epochs_to_90": 1,
     "train_loss_auc": 3.0, "peak_memory_mb": 95.0, "parameters": 10},
])

EPOCHS = pd.DataFrame(
    [{"run_id": "a0", "act": "relu", "status": "completed", "epoch": e, "val_acc": v,
      "epoch_time": 2.0, "images_per_s": 100.0} for e, v in ((1, 0.5), (2, 0.9), (3, 0.8))]
    + [{"run_id": "a1", "act": "relu", "status": "completed", "epoch": e, "val_acc": v,
        "epoch_time": 4.0, "images_per_s": 50.0} for e, v in ((1, 0.6), (2, 0.7), (3, 0.7))]
    + [{"run_id": "b0", "act": "tanh", "status": "diverged", "epoch": 1, "val_acc": 0.1,
        "epoch_time": 3.0, "images_per_s": 70.0}])


def test_last_vs_best_uses_completed_runs() -> None:
    table = last_vs_best(RUNS, ["act"]).set_index("act")
    assert table.loc["relu", "last_test_acc"] == pytest.approx(0.85)
    assert table.loc["relu", "best_val_test_acc"] == pytest.approx(0.88)
    assert table.loc["relu", "best_val_epoch"] == pytest.approx(2.5)
    assert table.loc["tanh", "last_test_acc"] == pytest.approx(0.70)  # the diverged run left out


def test_curve_peak_finds_each_runs_best_epoch() -> None:
    table = curve_peak(EPOCHS, ["act"])
    assert table["act"].tolist() == ["relu"]  # the diverged run has no completed curve
    row = table.iloc[0]
    # a0 peaks at 0.9 in epoch 2, a1 at 0.7 first in epoch 2; last values 0.8 and 0.7
    assert row["max_val_acc"] == pytest.approx(0.8)
    assert row["max_epoch"] == pytest.approx(2.0)
    assert row["last_val_acc"] == pytest.approx(0.75)


def test_convergence_and_cost() -> None:
    speed = convergence(RUNS, ["act"]).set_index("act")
    assert speed.loc["relu", "epochs_to_90"] == pytest.approx(2.5)
    assert speed.loc["tanh", "train_loss_auc"] == pytest.approx(3.0)
    spend = cost(RUNS, EPOCHS, ["act"]).set_index("act")
    assert spend.loc["relu", "seconds_per_epoch"] == pytest.approx(3.0)
    assert spend.loc["tanh", "seconds_per_epoch"] == pytest.approx(3.0)  # diverged epochs cost too
    assert spend.loc["tanh", "peak_memory_mb"] == pytest.approx(92.5)


def test_divergent_runs_are_listed_with_epoch_and_reason() -> None:
    table = divergent_runs(RUNS, ["act"])
    assert table.to_dict("records") == [{"act": "tanh", "seed": 0, "diverged_epoch": 2,
                                         "reason": "non-finite training loss", "run_id": "b0"}]
