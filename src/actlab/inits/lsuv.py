"""LSUV: layer-sequential unit-variance initialization (Mishkin & Matas 2016, "All you need
is a good init").

Orthonormal pre-initialization, then for each Conv/Linear layer in forward order, on one
fixed data batch: measure the variance of the layer's own output (before any
normalization or activation) and divide the weights by its square root, until
|Var - 1| < tol or max_iter rescalings are done (the paper's Algorithm 1, tol = 0.1 as in
its reference implementation). Runs without gradients in train mode (so BatchNorm uses
batch statistics, as during training) and restores the model's mode and buffers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from actlab.inits.base import Initializer, register_init, reset_norm_layers, weighted_layers
from actlab.inits.standard import Orthogonal


@register_init("lsuv")
class LSUV(Initializer):
    """Orthonormal init, then per layer scale W by 1/sqrt(Var(output)) until
    |Var - 1| < tol."""

    reference = "Mishkin & Matas 2016"

    def __init__(self, tol: float = 0.1, max_iter: int = 10) -> None:
        if not 0 < tol < 1 or max_iter < 1:
            raise ValueError("lsuv needs 0 < tol < 1 and max_iter >= 1")
        self.tol = tol
        self.max_iter = max_iter

    def apply(self, model: nn.Module, gain: float, batch: torch.Tensor | None = None) -> dict:
        """One forward pass does it all: a hook on each layer rescales the layer when the
        pass reaches it and hands the rescaled output on, so every later layer sees its
        predecessors already final, exactly as in the layer-by-layer procedure of the paper,
        at the cost of one pass instead of one (or more) per layer."""
        if batch is None:
            raise ValueError("lsuv needs a batch of training data (apply_init(..., batch=...)); "
                             "the engine passes one, a bare call must too")
        Orthogonal(gain=1.0).apply(model, 1.0)
        reset_norm_layers(model)
        was_training = model.training
        saved = {name: buffer.clone() for name, buffer in model.named_buffers()}
        model.train()
        report: dict[str, dict[str, float]] = {}
        names = {id(layer): name for name, layer in weighted_layers(model)}

        def rescale(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
                    ) -> torch.Tensor | None:
            name = names[id(layer)]
            if name in report:  # a layer called twice is scaled on its first call only
                return None
            variance = output.var().item()
            rescalings = 0
            while abs(variance - 1.0) >= self.tol and rescalings < self.max_iter:
                layer.weight.div_(math.sqrt(variance))
                rescalings += 1
                output = layer.forward(inputs[0])  # .forward: no hooks, no recursion
                variance = output.var().item()
            report[name] = {"variance": variance, "std": math.sqrt(variance),
                            "iterations": rescalings}
            return output

        handles = [layer.register_forward_hook(rescale) for _, layer in weighted_layers(model)]
        try:
            with torch.no_grad():
                model(batch)
        finally:
            for handle in handles:
                handle.remove()
            with torch.no_grad():
                for name, buffer in model.named_buffers():
                    buffer.copy_(saved[name])
            model.train(was_training)
        return {"lsuv": report}
