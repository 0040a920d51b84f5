"""Classification metrics, computed from logits and labels (pure functions, no state)."""

from __future__ import annotations

import torch


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Fraction of examples whose label is among the ``k`` highest logits."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return (top == labels.unsqueeze(1)).any(dim=1).float().mean().item()


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int
                     ) -> torch.Tensor:
    """``[true, predicted]`` counts, int64 ``[num_classes, num_classes]``."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def macro_scores(confusion: torch.Tensor) -> dict[str, float]:
    """Macro-averaged precision, recall and F1 from a confusion matrix.

    A class that is never predicted has precision 0 (scikit-learn's ``zero_division=0``),
    so a collapsed model scores low instead of NaN.
    """
    confusion = confusion.double()
    true_positive = confusion.diag()
    predicted = confusion.sum(dim=0)
    actual = confusion.sum(dim=1)
    precision = torch.where(predicted > 0, true_positive / predicted.clamp_min(1), 0.0)
    recall = torch.where(actual > 0, true_positive / actual.clamp_min(1), 0.0)
    denominator = precision + recall
    f1 = torch.where(denominator > 0, 2 * precision * recall / denominator.clamp_min(1e-12), 0.0)
    return {"macro_precision": precision.mean().item(), "macro_recall": recall.mean().item(),
            "macro_f1": f1.mean().item()}


def time_to_fraction(values: list[float], seconds: list[float],
                     fractions: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)
                     ) -> dict[str, float | int | None]:
    """Epochs (1-based) and cumulative seconds until ``values`` (validation accuracy per
    epoch) first reaches each fraction of its final value: ``epochs_to_90`` and
    ``seconds_to_90`` for 90%. None where it never does (or the final value is not
    positive)."""
    result: dict[str, float | int | None] = {}
    final = values[-1] if values else None
    elapsed = [sum(seconds[:i + 1]) for i in range(len(seconds))]
    for fraction in fractions:
        key = f"{round(fraction * 100):d}"
        epoch = None
        if final is not None and final > 0:
            epoch = next((i for i, v in enumerate(values) if v >= fraction * final), None)
        result[f"epochs_to_{key}"] = None if epoch is None else epoch + 1
        result[f"seconds_to_{key}"] = None if epoch is None else elapsed[epoch]
    return result


def loss_auc(losses: list[float]) -> float:
    """Area under the per-epoch training-loss curve: the sum of the epochs' mean losses
    (each epoch one unit wide), i.e. the integral of the loss over training measured in
    epochs. Lower means the loss came down sooner."""
    return float(sum(losses))
