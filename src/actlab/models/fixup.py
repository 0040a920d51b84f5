"""Fixup residual networks: ResNets without normalization (Zhang, Dauphin & Ma 2019,
"Fixup initialization: residual learning without normalization").

Each residual branch is bias - conv - bias - act - bias - conv - scale - bias, with scalar
biases (start 0) before each convolution, linear layer and activation, and a scalar
multiplier (start 1) per branch. The ``fixup`` initializer (actlab.inits.fixup) needs
the layout these models expose through :meth:`FixupResNet.fixup_layout`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from actlab.activations import ActSpec
from actlab.models.base import MODELS


class Scalar(nn.Module):
    """A learnable scalar added (``kind='bias'``, start 0) or multiplied (start 1)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.value = nn.Parameter(torch.full((1,), 0.0 if kind == "bias" else 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.value if self.kind == "bias" else x * self.value

    def reset(self) -> None:
        with torch.no_grad():
            self.value.fill_(0.0 if self.kind == "bias" else 1.0)


class FixupBasicBlock(nn.Module):
    def __init__(self, act: ActSpec, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.bias1a, self.bias1b = Scalar("bias"), Scalar("bias")
        self.bias2a, self.bias2b = Scalar("bias"), Scalar("bias")
        self.scale = Scalar("scale")
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.act1 = act.build(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.act2 = act.build(planes)
        self.stride = stride
        self.extra_channels = planes - in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bias1b(self.conv1(self.bias1a(x))))
        out = self.bias2b(self.scale(self.conv2(self.bias2a(out))))
        shortcut = self.bias1a(x)
        if self.stride != 1 or self.extra_channels:
            # Option A of He et al. 2016, as in the Fixup reference: subsample, zero-pad.
            shortcut = shortcut[:, :, ::self.stride, ::self.stride]
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act2(out + shortcut)


class FixupResNet(nn.Module):
    """CIFAR ResNet of depth 6n + 2 (He et al. 2016, section 4.2) without normalization."""

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int,
                 depth: int = 20, width: int = 16) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"fixup resnet depth must be 6n + 2 (20, 32, 44, 56), got {depth}")
        if image_size < 8:
            raise ValueError(f"fixup resnet needs images of at least 8x8, got {image_size}")
        per_stage = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bias1 = Scalar("bias")
        self.act = act.build(width)
        blocks: list[nn.Module] = []
        in_planes = width
        for stage, planes in enumerate((width, 2 * width, 4 * width)):
            for index in range(per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(FixupBasicBlock(act, in_planes, planes, stride))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.bias2 = Scalar("bias")
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.act(self.bias1(self.conv1(x))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(self.bias2(out))

    def fixup_layout(self) -> dict:
        """What the Fixup initializer needs: branches (their weighted layers in order), the
        classifier, the other weighted layers and the scalars."""
        return {
            "branches": [[block.conv1, block.conv2] for block in self.blocks],
            "classifier": self.fc,
            "other": [self.conv1],
            "scalars": [m for m in self.modules() if isinstance(m, Scalar)],
        }


def _fixup(depth: int):
    def build(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
              width: int = 16) -> FixupResNet:
        return FixupResNet(act, num_classes, in_channels, image_size, depth=depth, width=width)

    build.__doc__ = f"Fixup ResNet-{depth} (CIFAR, no normalization; Zhang et al. 2019)."
    return build


MODELS.add("fixup_resnet20", _fixup(20), fixup=True)
MODELS.add("fixup_resnet32", _fixup(32), fixup=True)
