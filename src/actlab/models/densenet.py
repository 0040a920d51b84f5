"""DenseNet-121 (Huang, Liu, van der Maaten & Weinberger 2017, "Densely connected
convolutional networks"), DenseNet-BC with growth rate 32 and blocks of 6, 12, 24, 16.

Dense layers are BN - act - 1x1 conv (4k) - BN - act - 3x3 conv (k), concatenated onto
their input; transitions are BN - act - 1x1 conv (compression 0.5) - 2x2 average pool;
the network ends with BN - act - global pool - linear. The ImageNet stem (7x7/2 conv, BN,
act, 3x3/2 max-pool) gives torchvision's 7,978,856 parameters for 1000 classes; the
CIFAR stem is one 3x3 conv to 2k channels (6,956,298 parameters for 10 classes, the
kuangliu/pytorch-cifar figure).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from actlab.activations import ActSpec
from actlab.models.base import MODELS
from actlab.models.layers import (
    check_dropout,
    check_image_size,
    check_positive,
    imagenet_stem,
    resolve_stem,
)


class DenseLayer(nn.Module):
    def __init__(self, act: ActSpec, in_channels: int, growth_rate: int, bn_size: int,
                 dropout: float) -> None:
        super().__init__()
        inner = bn_size * growth_rate
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.act1 = act.build(in_channels)
        self.conv1 = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.act2 = act.build(inner)
        self.conv2 = nn.Conv2d(inner, growth_rate, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.act1(self.bn1(x)))
        out = self.dropout(self.conv2(self.act2(self.bn2(out))))
        return torch.cat([x, out], 1)


class Transition(nn.Sequential):
    def __init__(self, act: ActSpec, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels), act.build(in_channels),
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.AvgPool2d(2),
        )


class DenseNet(nn.Module):
    """DenseNet-BC; ``blocks`` dense layers per block, ``growth_rate`` k."""

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int,
                 growth_rate: int = 32, blocks: Sequence[int] = (6, 12, 24, 16),
                 bn_size: int = 4, compression: float = 0.5, dropout: float = 0.0,
                 stem: str = "auto") -> None:
        super().__init__()
        check_positive("densenet", growth_rate=growth_rate, bn_size=bn_size)
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"densenet compression must be in (0, 1], got {compression}")
        check_dropout("densenet", dropout)
        stem = resolve_stem("densenet", stem, image_size)
        downsampling = len(blocks) - 1 + (2 if stem == "imagenet" else 0)
        check_image_size("densenet", image_size, 2 ** downsampling)
        channels = 2 * growth_rate
        layers: list[nn.Module] = []
        if stem == "imagenet":
            layers.append(imagenet_stem(act, in_channels, channels))
        else:
            layers.append(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False))
        for index, count in enumerate(blocks):
            for _ in range(count):
                layers.append(DenseLayer(act, channels, growth_rate, bn_size, dropout))
                channels += growth_rate
            if index < len(blocks) - 1:
                out = int(channels * compression)
                layers.append(Transition(act, channels, out))
                channels = out
        layers += [nn.BatchNorm2d(channels), act.build(channels)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


@MODELS.register("densenet121", family="densenet", reference="Huang et al. 2017")
def densenet121(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
                growth_rate: int = 32, bn_size: int = 4, compression: float = 0.5,
                dropout: float = 0.0, stem: str = "auto") -> DenseNet:
    """DenseNet-121 (BC): dense blocks of 6, 12, 24 and 16 layers."""
    return DenseNet(act, num_classes, in_channels, image_size, growth_rate=growth_rate,
                    blocks=(6, 12, 24, 16), bn_size=bn_size, compression=compression,
                    dropout=dropout, stem=stem)
