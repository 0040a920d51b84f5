"""Fixup initialization (Zhang, Dauphin & Ma 2019), for residual networks without
normalization that expose ``fixup_layout()`` (the ``fixup_*`` models).

With L residual branches of m weighted layers each: every branch layer but the last is
He-initialized (normal, fan_out as in the reference code, gain of the activation) and
scaled by L^(-1/(2m - 2)); the last layer of each branch and the classifier (weight and
bias) start at zero; the other layers (the stem) are He-initialized; scalar biases start
at 0 and branch multipliers at 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from actlab.inits.base import Initializer, register_init
from actlab.inits.standard import fans


def fixup_models() -> list[str]:
    """Names of the registered models that support Fixup."""
    from actlab.models import MODELS

    return [name for name in MODELS if MODELS.entry(name).meta.get("fixup")]


@register_init("fixup")
class Fixup(Initializer):
    """Zero-init the last layer of each residual branch and the classifier; rescale the rest."""

    uses_gain = True
    reference = "Zhang, Dauphin & Ma 2019"

    def __init__(self, gain: float | None = None) -> None:
        self.gain = gain

    def apply(self, model: nn.Module, gain: float, batch: torch.Tensor | None = None) -> dict:
        if not hasattr(model, "fixup_layout"):
            raise ValueError(f"fixup needs a model built for it (no normalization, scalar "
                             f"biases); {type(model).__name__} is not. Models that support "
                             f"fixup: {', '.join(fixup_models())}")
        layout = model.fixup_layout()
        branches = layout["branches"]
        depth = len(branches)
        per_branch = len(branches[0])
        scale = depth ** (-1.0 / (2 * per_branch - 2))
        with torch.no_grad():
            for layer in layout["other"]:
                layer.weight.normal_(0.0, gain / math.sqrt(fans(layer.weight)[0]))
            for branch in branches:
                for layer in branch[:-1]:
                    std = gain / math.sqrt(fans(layer.weight)[1]) * scale
                    layer.weight.normal_(0.0, std)
                branch[-1].weight.zero_()
            for layer in [*layout["other"], *(layer for branch in branches for layer in branch)]:
                if layer.bias is not None:
                    layer.bias.zero_()
            layout["classifier"].weight.zero_()
            layout["classifier"].bias.zero_()
            for scalar in layout["scalars"]:
                scalar.reset()
        return {"fixup": {"branches": depth, "layers_per_branch": per_branch, "scale": scale}}
