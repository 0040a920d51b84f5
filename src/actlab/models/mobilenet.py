"""MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov & Chen 2018, "MobileNetV2: inverted
residuals and linear bottlenecks").

Inverted residual blocks: 1x1 expand (t x) - BN - act - 3x3 depthwise - BN - act - 1x1
project - BN, with an identity shortcut when stride is 1 and the shape is kept. The
projection stays linear by design (the paper's "linear bottleneck"); it is not an
activation site. ReLU6 of the paper is the study's activation at every other site.
The ImageNet layout equals torchvision's (3,504,872 parameters for 1000 classes); the
CIFAR layout strides 1 in the stem and in the second stage (32 -> 32 -> 16 -> 8 -> 4),
as the common CIFAR ports do.
"""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import ActSpec
from actlab.models.base import MODELS
from actlab.models.layers import (
    check_dropout,
    check_image_size,
    check_positive,
    conv_bn_act,
    resolve_stem,
)

# (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper.
INVERTED_RESIDUALS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never below 90% of ``value`` (as the
    reference implementation does for width multipliers)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(nn.Module):
    def __init__(self, act: ActSpec, in_channels: int, out_channels: int, stride: int,
                 expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_act(act, in_channels, hidden, 1))
        layers += [
            conv_bn_act(act, hidden, hidden, 3, stride=stride, groups=hidden),
            conv_bn_act(None, hidden, out_channels, 1),  # linear bottleneck
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    """MobileNetV2 with width multiplier ``width_mult`` and classifier dropout."""

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                 width_mult: float, dropout: float, stem: str) -> None:
        super().__init__()
        check_positive("mobilenetv2", width_mult=width_mult)
        check_dropout("mobilenetv2", dropout)
        stem = resolve_stem("mobilenetv2", stem, image_size)
        check_image_size("mobilenetv2", image_size, 32 if stem == "imagenet" else 8)
        channels = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [
            conv_bn_act(act, in_channels, channels, 3, stride=2 if stem == "imagenet" else 1),
        ]
        for stage, (expansion, out, repeats, stride) in enumerate(INVERTED_RESIDUALS):
            if stem == "cifar" and stage == 1:
                stride = 1
            out = make_divisible(out * width_mult)
            for index in range(repeats):
                layers.append(InvertedResidual(act, channels, out, stride if index == 0 else 1,
                                               expansion))
                channels = out
        layers.append(conv_bn_act(act, channels, last, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


@MODELS.register("mobilenetv2", aliases=("mobilenet_v2",), family="mobilenet",
                 reference="Sandler et al. 2018")
def mobilenetv2(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
                width_mult: float = 1.0, dropout: float = 0.2, stem: str = "auto"
                ) -> MobileNetV2:
    """MobileNetV2: inverted residual blocks with linear bottlenecks; ``width_mult``
    scales every layer's channels."""
    return MobileNetV2(act, num_classes, in_channels, image_size, width_mult=width_mult,
                       dropout=dropout, stem=stem)
