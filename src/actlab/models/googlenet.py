"""GoogLeNet / Inception v1 (Szegedy et al. 2015, "Going deeper with convolutions"), with
BatchNorm after every convolution (as torchvision and the CIFAR ports do) and without
the auxiliary classifiers.

The third inception branch uses the paper's 5x5 convolution. torchvision uses a 3x3
there (a known deviation), so with 1000 classes its model has 6,624,904 parameters and
this one 16 * sum(5x5 reduce * 5x5) = 380,928 more: 7,005,832.
The ImageNet stem is the paper's (7x7/2 conv, pool, 1x1 conv, 3x3 conv, pool); the
CIFAR stem is one 3x3 conv to 192 channels.
"""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import ActSpec
from actlab.models.base import MODELS
from actlab.models.layers import (
    check_dropout,
    check_image_size,
    conv_bn_act,
    resolve_stem,
)

# in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection (Table 1 of the paper).
INCEPTION_CONFIGS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}
BN_EPS = 1e-3  # as in the Inception reference implementations


class Inception(nn.Module):
    def __init__(self, act: ActSpec, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch5x5red: int, ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = conv_bn_act(act, in_channels, ch1x1, 1, bn_eps=BN_EPS)
        self.branch2 = nn.Sequential(conv_bn_act(act, in_channels, ch3x3red, 1, bn_eps=BN_EPS),
                                     conv_bn_act(act, ch3x3red, ch3x3, 3, bn_eps=BN_EPS))
        self.branch3 = nn.Sequential(conv_bn_act(act, in_channels, ch5x5red, 1, bn_eps=BN_EPS),
                                     conv_bn_act(act, ch5x5red, ch5x5, 5, bn_eps=BN_EPS))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     conv_bn_act(act, in_channels, pool_proj, 1, bn_eps=BN_EPS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x),
                          self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    """Inception v1: stem, 3a 3b, pool, 4a-4e, pool, 5a 5b, global pool, dropout, linear."""

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                 dropout: float, stem: str) -> None:
        super().__init__()
        check_dropout("googlenet", dropout)
        stem = resolve_stem("googlenet", stem, image_size)
        check_image_size("googlenet", image_size, 32 if stem == "imagenet" else 8)
        if stem == "imagenet":
            self.stem = nn.Sequential(
                conv_bn_act(act, in_channels, 64, 7, stride=2, bn_eps=BN_EPS),
                nn.MaxPool2d(3, 2, ceil_mode=True),
                conv_bn_act(act, 64, 64, 1, bn_eps=BN_EPS),
                conv_bn_act(act, 64, 192, 3, bn_eps=BN_EPS),
                nn.MaxPool2d(3, 2, ceil_mode=True),
            )
        else:
            self.stem = conv_bn_act(act, in_channels, 192, 3, bn_eps=BN_EPS)

        def inception(key: str) -> Inception:
            return Inception(act, *INCEPTION_CONFIGS[key])

        self.inception3 = nn.Sequential(inception("3a"), inception("3b"),
                                        nn.MaxPool2d(3, 2, ceil_mode=True))
        self.inception4 = nn.Sequential(*(inception(k) for k in ("4a", "4b", "4c", "4d", "4e")),
                                        nn.MaxPool2d(2, 2, ceil_mode=True))
        self.inception5 = nn.Sequential(inception("5a"), inception("5b"))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inception5(self.inception4(self.inception3(self.stem(x))))
        return self.fc(self.dropout(self.pool(out).flatten(1)))


@MODELS.register("googlenet", aliases=("inception_v1",), family="inception",
                 reference="Szegedy et al. 2015")
def googlenet(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
              dropout: float = 0.2, stem: str = "auto") -> GoogLeNet:
    """GoogLeNet (Inception v1) without the auxiliary classifiers."""
    return GoogLeNet(act, num_classes, in_channels, image_size, dropout=dropout, stem=stem)
