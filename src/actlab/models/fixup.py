"""Fixup residual networks: ResNets without normalization (Zhang, Dauphin & Ma 2019,
"Fixup initialization: residual learning without normalization").

Each residual branch is bias - conv - bias - act - bias - conv - scale - bias, with scalar
biases (start 0) before each convolution, linear layer and activation, and a scalar
multiplier (start 1) per branch. The ``fixup`` initializer (actlab.inits.fixup) needs
the layout these models expose through :meth:`FixupResNet.fixup_layout`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actlab.activations import ActSpec
from actlab.models.base import MODELS
from actlab.models.layers import check_image_size, check_positive, resolve_stem
from actlab.models.resnet import PadShortcut


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
    """bias - conv - bias - act - bias - conv - scale - bias, plus the shortcut, then act.

    A changed shape is matched by option A (subsample and zero-pad, the CIFAR reference)
    or by a 1x1 convolution (``projection=True``, the ImageNet reference); both read the
    input after the block's first scalar bias, as the reference code does.
    """

    def __init__(self, act: ActSpec, in_planes: int, planes: int, stride: int,
                 projection: bool = False) -> None:
        super().__init__()
        self.bias1a, self.bias1b = Scalar("bias"), Scalar("bias")
        self.bias2a, self.bias2b = Scalar("bias"), Scalar("bias")
        self.scale = Scalar("scale")
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.act1 = act.build(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.act2 = act.build(planes)
        reshape = stride != 1 or in_planes != planes
        self.downsample: nn.Module
        if not reshape:
            self.downsample = nn.Identity()
        elif projection:
            self.downsample = nn.Conv2d(in_planes, planes, 1, stride, bias=False)
        else:
            self.downsample = PadShortcut(stride, planes - in_planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bias1a(x)
        out = self.act1(self.bias1b(self.conv1(x)))
        out = self.bias2b(self.scale(self.conv2(self.bias2a(out))))
        return self.act2(out + self.downsample(x))


class FixupResNet(nn.Module):
    """A residual network of basic blocks without normalization, for Fixup.

    ``layers`` blocks per stage, stage ``s`` with ``width * 2**s`` planes. The CIFAR
    ResNets (depth 6n + 2, He et al. 2016 section 4.2) use three stages from a 3x3 stem
    with option-A shortcuts; fixup_resnet18 uses four stages, 1x1 projection shortcuts
    and the ImageNet stem for large inputs (``stem``: auto, cifar or imagenet).
    """

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                 layers: Sequence[int] = (3, 3, 3), width: int = 16, projection: bool = False,
                 stem: str = "cifar") -> None:
        super().__init__()
        check_positive("fixup resnet", width=width)
        stem = resolve_stem("fixup resnet", stem, image_size)
        check_image_size("fixup resnet", image_size, 32 if stem == "imagenet" else 8)
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
            self.pool: nn.Module = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            self.pool = nn.Identity()
        self.bias1 = Scalar("bias")
        self.act = act.build(width)
        blocks: list[nn.Module] = []
        in_planes = width
        for stage, count in enumerate(layers):
            planes = width * 2 ** stage
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(FixupBasicBlock(act, in_planes, planes, stride, projection))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.bias2 = Scalar("bias")
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(self.act(self.bias1(self.conv1(x))))
        out = F.adaptive_avg_pool2d(self.blocks(out), 1).flatten(1)
        return self.fc(self.bias2(out))

    def fixup_layout(self) -> dict:
        """What the Fixup initializer needs: branches (their weighted layers in order), the
        classifier, the other weighted layers (stem, projections) and the scalars."""
        projections = [block.downsample for block in self.blocks
                       if isinstance(block.downsample, nn.Conv2d)]
        return {
            "branches": [[block.conv1, block.conv2] for block in self.blocks],
            "classifier": self.fc,
            "other": [self.conv1, *projections],
            "scalars": [m for m in self.modules() if isinstance(m, Scalar)],
        }


def build_fixup_cifar(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                      depth: int = 20, width: int = 16) -> FixupResNet:
    """Fixup CIFAR ResNet of depth 6n + 2 (20, 32, 44, 56, 110), no normalization."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"fixup resnet depth must be 6n + 2 (20, 32, 44, 56), got {depth}")
    return FixupResNet(act, num_classes, in_channels, image_size,
                       layers=((depth - 2) // 6,) * 3, width=width)


FIXUP = "Zhang, Dauphin & Ma 2019, Fixup initialization"


@MODELS.register("fixup_resnet20", fixup=True, family="resnet", reference=FIXUP)
def fixup_resnet20(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                   width: int = 16) -> FixupResNet:
    """CIFAR ResNet-20 without normalization, for Fixup: 3 stages of 3 basic blocks."""
    return build_fixup_cifar(act, num_classes, in_channels, image_size, depth=20, width=width)


@MODELS.register("fixup_resnet32", fixup=True, family="resnet", reference=FIXUP)
def fixup_resnet32(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                   width: int = 16) -> FixupResNet:
    """CIFAR ResNet-32 without normalization, for Fixup: 3 stages of 5 basic blocks."""
    return build_fixup_cifar(act, num_classes, in_channels, image_size, depth=32, width=width)


@MODELS.register("fixup_resnet44", fixup=True, family="resnet", reference=FIXUP)
def fixup_resnet44(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                   width: int = 16) -> FixupResNet:
    """CIFAR ResNet-44 without normalization, for Fixup: 3 stages of 7 basic blocks."""
    return build_fixup_cifar(act, num_classes, in_channels, image_size, depth=44, width=width)


@MODELS.register("fixup_resnet56", fixup=True, family="resnet", reference=FIXUP)
def fixup_resnet56(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                   width: int = 16) -> FixupResNet:
    """CIFAR ResNet-56 without normalization, for Fixup: 3 stages of 9 basic blocks."""
    return build_fixup_cifar(act, num_classes, in_channels, image_size, depth=56, width=width)


@MODELS.register("fixup_resnet18", fixup=True, family="resnet", reference=FIXUP)
def fixup_resnet18(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                   width: int = 64, projection: bool = True, stem: str = "auto"
                   ) -> FixupResNet:
    """ResNet-18 without normalization, for Fixup: 4 stages of 2 basic blocks, 1x1
    projection shortcuts, the ImageNet stem for large inputs."""
    return FixupResNet(act, num_classes, in_channels, image_size, layers=(2, 2, 2, 2),
                       width=width, projection=projection, stem=stem)
