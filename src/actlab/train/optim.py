"""Optimizers, built from the run spec's optimizer section."""

from __future__ import annotations

import torch
from torch import nn

OPTIMIZER_NAMES = ("sgd", "adam", "adamw")


def build_optimizer(model: nn.Module, name: str, lr: float, momentum: float = 0.9,
                    nesterov: bool = False, weight_decay: float = 0.0,
                    betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """SGD (with momentum, optionally Nesterov), Adam or AdamW over all parameters."""
    params = model.parameters()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov,
                               weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer '{name}'; choose from {', '.join(OPTIMIZER_NAMES)}")
