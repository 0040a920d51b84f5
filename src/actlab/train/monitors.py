"""Per-layer measurements: weight statistics, gradient norms and dead units.

- weights: mean and std of every Conv/Linear weight (the "average weight" curves of the
  He-initialization study), recorded at initialization (epoch 0) and after every epoch;
- gradients: the L2 norm of every Conv/Linear weight gradient, averaged over the steps of
  an epoch (``train.grad_stats``; costs a norm per layer per step);
- dead units: for rectifier activations (ReLU and friends), the fraction of channels
  whose output is zero for every example of a fixed batch of training images.
"""

from __future__ import annotations

import torch
from torch import nn

from actlab.inits.base import weighted_layers
from actlab.models import activation_sites
from actlab.models.base import eval_forward_with_hooks

LayerValues = list[tuple[str, str, float]]  # (layer, metric, value)


def weight_statistics(model: nn.Module) -> LayerValues:
    values: LayerValues = []
    with torch.no_grad():
        for name, layer in weighted_layers(model):
            weight = layer.weight.detach().float()
            values.append((name, "weight_mean", weight.mean().item()))
            values.append((name, "weight_std", weight.std().item() if weight.numel() > 1
                           else 0.0))
    return values


class GradientNorms:
    """Running mean over steps of each weighted layer's gradient norm (on the device)."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = list(weighted_layers(model))
        self.reset()

    def reset(self) -> None:
        self.sums: torch.Tensor | None = None
        self.steps = 0

    def update(self) -> None:
        grads = [layer.weight.grad for _, layer in self.layers]
        if any(g is None for g in grads):
            return
        norms = torch.stack(torch._foreach_norm(grads))
        self.sums = norms if self.sums is None else self.sums + norms
        self.steps += 1

    def values(self) -> LayerValues:
        if self.sums is None or not self.steps:
            return []
        means = (self.sums / self.steps).tolist()
        return [(name, "grad_norm", value)
                for (name, _), value in zip(self.layers, means, strict=True)]


def dead_unit_fractions(model: nn.Module, batch: torch.Tensor) -> LayerValues:
    """Fraction of channels of each rectifier site that output zero for the whole batch
    (evaluated in eval mode, without gradients)."""
    sites = {name: module for name, module in activation_sites(model).items()
             if module.spec is not None and module.spec.properties.rectifier}
    if not sites:
        return []
    results: LayerValues = []

    def hook(name: str):
        def record(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            per_channel = output.detach().transpose(0, 1).reshape(output.shape[1], -1)
            dead = (per_channel.abs().amax(dim=1) == 0).float().mean().item()
            results.append((name, "dead_fraction", dead))
        return record

    eval_forward_with_hooks(model, batch, {module: hook(name) for name, module in sites.items()})
    return results
