"""Learning-rate range test (Smith 2017, section 3.3; the "lr finder" of fastai).

Train a freshly initialized model for a short run while the learning rate grows
exponentially from ``start_lr`` to ``end_lr``, record the loss at every step and stop
once it explodes. The suggestion is the lr where the smoothed loss falls fastest (the
steepest negative slope against log lr); the range worth studying runs from about a
tenth of the minimum-loss lr up to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from actlab.spec import RunSpec
from actlab.train.core import setup


@dataclass(frozen=True)
class LRFindResult:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float
    min_loss_lr: float
    stopped_early: bool

    @property
    def suggested_range(self) -> tuple[float, float]:
        """(low, high): a tenth of the minimum-loss lr up to the steepest-descent lr."""
        low = min(self.suggested_lr, self.min_loss_lr / 10.0)
        return low, max(self.suggested_lr, low)


def lr_range_test(spec: RunSpec, start_lr: float = 1e-6, end_lr: float = 10.0,
                  steps: int = 100, smoothing: float = 0.98, blowup: float = 4.0
                  ) -> LRFindResult:
    """Run the range test for ``spec``'s model, data, optimizer and batch size, with the
    run's own training step (autocast, label smoothing, clipping, constraints)."""
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr-find needs 0 < start_lr < end_lr, got {start_lr}, {end_lr}")
    if steps < 10:
        raise ValueError(f"lr-find needs at least 10 steps, got {steps}")
    run = setup(spec)
    generator = torch.Generator().manual_seed(spec.seed)
    factor = (end_lr / start_lr) ** (1.0 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    average, best = 0.0, math.inf
    run.model.train()
    while len(lrs) < steps:
        for x, y in run.data.train_batches(spec.train.batch_size, generator):
            lr = start_lr * factor ** len(lrs)
            value = run.train_step(x, y, lr)[0].item()
            average = smoothing * average + (1 - smoothing) * value
            lrs.append(lr)
            losses.append(value)
            smoothed.append(average / (1 - smoothing ** len(lrs)))
            best = min(best, smoothed[-1])
            if not math.isfinite(value) or smoothed[-1] > blowup * best:
                return _suggestion(lrs, losses, smoothed, stopped_early=True)
            if len(lrs) >= steps:
                break
    return _suggestion(lrs, losses, smoothed, stopped_early=False)


def _suggestion(lrs: list[float], losses: list[float], smoothed: list[float],
                stopped_early: bool) -> LRFindResult:
    """The steepest descent of the smoothed loss against log lr before its minimum (after
    the minimum the loss rises anyway), and the minimum itself."""
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    curve = np.array([smoothed[i] for i in finite])
    log_lrs = np.log10([lrs[i] for i in finite])
    min_index = finite[int(np.argmin(curve))]
    upto = max(2, finite.index(min_index) + 1)
    slopes = np.gradient(curve[:upto], log_lrs[:upto])
    suggested = lrs[finite[int(np.argmin(slopes))]]
    return LRFindResult(lrs, losses, smoothed, suggested, lrs[min_index], stopped_early)
