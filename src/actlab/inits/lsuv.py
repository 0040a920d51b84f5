"""LSUV: layer-sequential unit-variance initialization (Mishkin & Matas 2016, "All you need
is a good init").

Orthonormal pre-initialization, then for each Conv/Linear layer in forward order, on one
fixed data batch: measure the standard deviation of the layer's own output (before any
normalization or activation) and divide the weights by it, until |std - 1| < tol or
max_iter rescalings are done. Runs without gradients in train mode (so BatchNorm uses
batch statistics, as during training) and restores the model's mode and buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from actlab.inits.base import Initializer, register_init, reset_norm_layers, weighted_layers
from actlab.inits.standard import Orthogonal


def forward_order(model: nn.Module, batch: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """Conv/Linear layers in the order a forward pass calls them."""
    order: list[tuple[str, nn.Module]] = []
    names = {id(m): n for n, m in weighted_layers(model)}
    handles = [m.register_forward_hook(
        lambda mod, _i, _o: order.append((names[id(mod)], mod)) if all(
            mod is not seen for _, seen in order) else None)
        for _, m in weighted_layers(model)]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return order


class _StopForwardSignal(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by a forward hook to stop the forward pass once the layer of interest ran."""


def layer_output_std(model: nn.Module, layer: nn.Module, batch: torch.Tensor) -> float:
    """Std of ``layer``'s output for ``batch``; the forward stops right after that layer,
    so visiting every layer of a deep network costs about L/2 full passes, not L."""
    captured: list[float] = []

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        captured.append(output.std().item())
        raise _StopForwardSignal

    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(batch)
    except _StopForwardSignal:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"layer {layer} was not called by the forward pass")
    return captured[0]


@register_init("lsuv")
class LSUV(Initializer):
    """Orthonormal init, then per layer scale W by 1/std(output) until |std - 1| < tol."""

    reference = "Mishkin & Matas 2016"

    def __init__(self, tol: float = 0.1, max_iter: int = 10) -> None:
        if not 0 < tol < 1 or max_iter < 1:
            raise ValueError("lsuv needs 0 < tol < 1 and max_iter >= 1")
        self.tol = tol
        self.max_iter = max_iter

    def apply(self, model: nn.Module, gain: float, batch: torch.Tensor | None = None) -> dict:
        if batch is None:
            raise ValueError("lsuv needs a batch of training data (apply_init(..., batch=...)); "
                             "the engine passes one, a bare call must too")
        Orthogonal(gain=1.0).apply(model, 1.0)
        reset_norm_layers(model)
        was_training = model.training
        saved = {name: buffer.clone() for name, buffer in model.named_buffers()}
        model.train()
        report: dict[str, dict[str, float]] = {}
        try:
            for name, layer in forward_order(model, batch):
                rescalings = 0
                std = layer_output_std(model, layer, batch)
                while abs(std - 1.0) >= self.tol and rescalings < self.max_iter:
                    with torch.no_grad():
                        layer.weight.div_(std)
                    rescalings += 1
                    std = layer_output_std(model, layer, batch)
                report[name] = {"std": std, "iterations": rescalings}
        finally:
            with torch.no_grad():
                for name, buffer in model.named_buffers():
                    buffer.copy_(saved[name])
            model.train(was_training)
        return {"lsuv": report}
