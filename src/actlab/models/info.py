"""Model facts without training: parameters, multiply-accumulates, activation sites.

Counting happens on PyTorch's ``meta`` device (shapes only, no memory, no arithmetic), so
even VGG-16 at 224x224 is described in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from actlab.activations import Activation, ActSpec, resolve_act
from actlab.models.base import (
    MODELS,
    activation_sites,
    build_model,
    eval_forward_with_hooks,
    model_options,
)


@dataclass(frozen=True)
class ModelInfo:
    """What ``actlab models show`` prints for one model, activation and input size."""

    name: str
    act: str
    in_channels: int
    image_size: int
    num_classes: int
    parameters: int
    activation_parameters: int
    macs: int
    activation_sites: int
    fixed_sites: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    family: str = ""
    reference: str = ""
    fixup: bool = False


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of Conv and Linear layers for one forward pass of ``example``.

    Per output element a conv does ``in_channels / groups * kernel area`` MACs and a linear
    layer ``in_features``; normalization, activations and pooling are not counted (the
    usual convention, e.g. torchvision's published "GFLOPS" column).
    """
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * module.in_channels // module.groups * kernel

    def linear_hook(module: nn.Linear, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    hooks = {module: conv_hook if isinstance(module, nn.Conv2d) else linear_hook
             for module in model.modules() if isinstance(module, nn.Conv2d | nn.Linear)}
    eval_forward_with_hooks(model, example, hooks)
    return total // example.shape[0]


def describe_model(name: str, act: str | Mapping[str, Any] | ActSpec = "relu",
                   num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                   **options: Any) -> ModelInfo:
    """Build ``name`` on the meta device and measure it for one input image."""
    spec = resolve_act(act)
    with torch.device("meta"):
        model = build_model(name, act=spec, num_classes=num_classes, in_channels=in_channels,
                            image_size=image_size, **options)
        macs = count_macs(model, torch.zeros(1, in_channels, image_size, image_size))
    sites = activation_sites(model)
    fixed = tuple(getattr(model, "fixed_activation_sites", ()))
    entry = MODELS.entry(name)
    return ModelInfo(
        name=MODELS.canonical(name), act=spec.label, in_channels=in_channels,
        image_size=image_size, num_classes=num_classes,
        parameters=sum(p.numel() for p in model.parameters()),
        activation_parameters=sum(p.numel() for m in sites.values()
                                  if isinstance(m, Activation) for p in m.parameters()),
        macs=macs,
        activation_sites=model.activation_site_count,
        fixed_sites=tuple(site for site in sites if any(site.endswith(f) for f in fixed)),
        options={**model_options(name), **options},
        family=str(entry.meta.get("family", "")),
        reference=str(entry.meta.get("reference", "")),
        fixup=bool(entry.meta.get("fixup", False)),
    )
