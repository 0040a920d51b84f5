"""Optimizers, built from the run spec's optimizer section, with parameter groups.

Parameters fall into three groups: activation parameters (of learnable activations),
normalization parameters, and the rest. ``decay_act_and_norm=False`` exempts the first
two from weight decay (common practice for scales and shifts); ``act_lr_scale``
multiplies the learning rate of activation parameters. The engine sets each group's lr
to ``schedule(step) * group['lr_scale']`` before every step.
"""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import Activation
from actlab.inits.base import NORM_LAYERS

OPTIMIZER_NAMES = ("sgd", "adam", "adamw", "rmsprop")


def parameter_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Split parameters into ``act`` (activation), ``norm`` and ``other``; each once."""
    groups: dict[str, list[nn.Parameter]] = {"act": [], "norm": [], "other": []}
    seen: set[int] = set()
    for kind, types in (("act", (Activation,)), ("norm", NORM_LAYERS)):
        for module in model.modules():
            if isinstance(module, types):
                for param in module.parameters():
                    if id(param) not in seen:
                        seen.add(id(param))
                        groups[kind].append(param)
    groups["other"] = [p for p in model.parameters() if id(p) not in seen]
    return groups


def build_optimizer(model: nn.Module, name: str, lr: float, momentum: float = 0.9,
                    nesterov: bool = False, weight_decay: float = 0.0,
                    betas: tuple[float, float] = (0.9, 0.999), decay_act_and_norm: bool = True,
                    act_lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """SGD (with momentum, optionally Nesterov), Adam, AdamW or RMSprop (with momentum)
    over parameter groups."""
    split = parameter_groups(model)
    exempt_decay = 0.0 if not decay_act_and_norm else weight_decay
    groups = [
        {"params": split["other"], "weight_decay": weight_decay, "lr_scale": 1.0},
        {"params": split["norm"], "weight_decay": exempt_decay, "lr_scale": 1.0},
        {"params": split["act"], "weight_decay": exempt_decay, "lr_scale": act_lr_scale},
    ]
    groups = [g for g in groups if g["params"]]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer '{name}'; choose from {', '.join(OPTIMIZER_NAMES)}")
