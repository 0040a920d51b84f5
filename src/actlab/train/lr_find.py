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
import torch.nn.functional as F

from actlab.study.spec import RunSpec
from actlab.train.engine import prepare, resolve_device
from actlab.train.optim import build_optimizer


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
    """Run the range test for ``spec``'s model, data, optimizer and batch size."""
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr-find needs 0 < start_lr < end_lr, got {start_lr}, {end_lr}")
    if steps < 10:
        raise ValueError(f"lr-find needs at least 10 steps, got {steps}")
    device = resolve_device(spec.train.device)
    data, model = prepare(spec, device)
    optimizer = build_optimizer(model, **spec.train.optimizer.model_dump())
    generator = torch.Generator().manual_seed(spec.seed)
    factor = (end_lr / start_lr) ** (1.0 / (steps - 1))
    lrs, losses, smoothed = [], [], []
    average, best = 0.0, math.inf
    stopped_early = False
    model.train()
    step = 0
    while step < steps:
        for x, y in data.train_batches(spec.train.batch_size, generator):
            lr = start_lr * factor ** step
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            loss = F.cross_entropy(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = loss.item()
            average = smoothing * average + (1 - smoothing) * value
            corrected = average / (1 - smoothing ** (step + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(corrected)
            best = min(best, corrected)
            step += 1
            if not math.isfinite(value) or corrected > blowup * best:
                stopped_early = True
                break
            if step >= steps:
                break
        if stopped_early:
            break
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    curve = np.array([smoothed[i] for i in finite])
    log_lrs = np.log10([lrs[i] for i in finite])
    min_index = finite[int(np.argmin(curve))]
    # Steepest descent before the minimum (after the minimum the loss rises anyway).
    upto = max(2, finite.index(min_index) + 1)
    slopes = np.gradient(curve[:upto], log_lrs[:upto])
    suggested = lrs[finite[int(np.argmin(slopes))]]
    return LRFindResult(lrs, losses, smoothed, suggested, lrs[min_index], stopped_early)
