"""Empirical signal propagation at initialization (docs/theory.md): push a batch of N(0, 1)
inputs through a plain deep network at init and record, per layer, the variance of the
pre-activations on the way forward and the norm of the weight gradients on the way back.
This shows vanishing and exploding directly: the naive N(0, 1) init multiplies the
variance by about fan_in · E[f(z)²] per layer, Xavier with ReLU halves it, He holds it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch
from torch import nn

from actlab.activations.base import build_activation
from actlab.inits import apply_init


def plain_network(act: Any, depth: int, width: int, kind: str = "fc") -> nn.Sequential:
    """``depth`` blocks of Linear(width, width) (``kind='fc'``) or 3x3 Conv2d
    (``kind='conv'``, same padding), each followed by the activation; no normalization,
    so nothing but the initializer and the activation sets the scale."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers.append(nn.Linear(width, width) if kind == "fc"
                      else nn.Conv2d(width, width, 3, padding=1))
        layers.append(build_activation(act, channels=width))
    return nn.Sequential(*layers)


def signal_propagation(act: Any, init: Any, depth: int = 50, width: int = 512,
                       kind: str = "fc", batch: int = 256, image_size: int = 8,
                       seed: int = 0, gain: str | float = "matched") -> pd.DataFrame:
    """Per layer (1..depth): variance of the pre-activations and of the activations, and
    the gradient norm of the layer's weight for the loss mean(output²)/2. Values that
    overflow are recorded as inf (exploding), underflows as 0 (vanishing)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = plain_network(act, depth, width, kind).double()
        shape = (batch, width) if kind == "fc" else (batch, width, image_size, image_size)
        inputs = torch.randn(shape, generator=generator, dtype=torch.float64)
        apply_init(model, init, act, gain=gain, batch=inputs)
    pre: list[torch.Tensor] = []
    post: list[torch.Tensor] = []
    x = inputs
    for module in model:
        x = module(x)
        if isinstance(module, nn.Linear | nn.Conv2d):
            x.retain_grad()
            pre.append(x)
        else:
            post.append(x)
    loss = 0.5 * x.pow(2).mean()
    if torch.isfinite(loss):
        loss.backward()
    weights = [m.weight for m in model if isinstance(m, nn.Linear | nn.Conv2d)]
    rows = []
    for layer, (z, a, weight) in enumerate(zip(pre, post, weights, strict=True), start=1):
        grad = weight.grad
        rows.append({
            "layer": layer,
            "pre_variance": _finite_or_inf(z.detach().var().item()),
            "post_variance": _finite_or_inf(a.detach().var().item()),
            "grad_norm": _finite_or_inf(grad.norm().item()) if grad is not None else math.nan,
        })
    return pd.DataFrame(rows)


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def escape_depth(variances: pd.Series, low: float = 1e-3, high: float = 1e3) -> int | None:
    """The first layer whose value leaves [low, high] (None if it never does)."""
    for layer, value in enumerate(variances, start=1):
        if not (low <= value <= high) or not math.isfinite(value):
            return layer
    return None
