"""Residual networks: ResNet-18/34/50, CIFAR ResNet-20..56, pre-activation ResNet-18,
wide ResNets, SE-ResNet-18 and the "bag of tricks" xresnets, from one :class:`ResNet`.

References:
- He, Zhang, Ren & Sun 2016, "Deep residual learning for image recognition" (basic and
  bottleneck blocks; section 4.2 for the CIFAR ResNets of depth 6n + 2 with option-A
  shortcuts, Table 6 for their sizes).
- He, Zhang, Ren & Sun 2016, "Identity mappings in deep residual networks" (pre-activation).
- Zagoruyko & Komodakis 2016, "Wide residual networks" (WRN-d-k, Table 1/4 sizes).
- Hu, Shen & Sun 2018, "Squeeze-and-excitation networks" (SE block before the addition).
- He, Zhang, Zhang et al. 2019, "Bag of tricks for image classification" (ResNet-C deep
  stem, ResNet-D average-pool shortcut; the fastai "xresnet").

The CIFAR variants of the ImageNet ResNets replace the 7x7/2 stem and max-pool with one
3x3/1 convolution; with 10 classes ResNet-18 then has 11,173,962 parameters, the figure
of the widely used kuangliu/pytorch-cifar models. The bottleneck block strides in its
3x3 convolution (torchvision's "ResNet v1.5"); it does not change the parameter count.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actlab.activations import ActSpec
from actlab.models.base import MODELS
from actlab.models.layers import (
    SqueezeExcite,
    check_dropout,
    check_image_size,
    check_positive,
    conv_bn_act,
    imagenet_stem,
    resolve_stem,
)

SHORTCUTS = ("A", "B", "D")


class PadShortcut(nn.Module):
    """Option A of He et al. 2016: subsample and zero-pad the new channels (no parameters)."""

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


def make_shortcut(kind: str, in_planes: int, out_planes: int, stride: int) -> nn.Module:
    """Identity when the shape is kept; otherwise option A (pad), B (1x1 conv + BN) or
    D (2x2 average pool, then 1x1 conv + BN; Bag of Tricks' ResNet-D)."""
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    if kind == "A":
        return PadShortcut(stride, out_planes - in_planes)
    conv = nn.Conv2d(in_planes, out_planes, 1, stride=1 if kind == "D" else stride, bias=False)
    layers: list[nn.Module] = [conv, nn.BatchNorm2d(out_planes)]
    if kind == "D" and stride > 1:
        layers.insert(0, nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """conv3x3 - BN - act - conv3x3 - BN (- SE) + shortcut - act."""

    expansion = 1

    def __init__(self, act: ActSpec, in_planes: int, planes: int, stride: int,
                 shortcut: str = "B", se_reduction: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = act.build(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SqueezeExcite(act, planes, se_reduction) if se_reduction else nn.Identity()
        self.shortcut = make_shortcut(shortcut, in_planes, planes, stride)
        self.act2 = act.build(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return self.act2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """conv1x1 - BN - act - conv3x3 (stride) - BN - act - conv1x1 (4x) - BN + shortcut - act."""

    expansion = 4

    def __init__(self, act: ActSpec, in_planes: int, planes: int, stride: int,
                 shortcut: str = "B", se_reduction: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = act.build(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = act.build(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.se = (SqueezeExcite(act, out_planes, se_reduction) if se_reduction
                   else nn.Identity())
        self.shortcut = make_shortcut(shortcut, in_planes, out_planes, stride)
        self.act3 = act.build(out_planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return self.act3(out + self.shortcut(x))


class PreActBlock(nn.Module):
    """BN - act - conv3x3 - BN - act (- dropout) - conv3x3 + shortcut (He et al. 2016b; the
    wide-ResNet block). A projection shortcut (1x1 conv) reads the pre-activated input."""

    expansion = 1

    def __init__(self, act: ActSpec, in_planes: int, planes: int, stride: int,
                 shortcut: str = "B", se_reduction: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.act1 = act.build(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = act.build(planes)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.projection = stride != 1 or in_planes != planes
        self.shortcut = (nn.Conv2d(in_planes, planes, 1, stride, bias=False)
                         if self.projection else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(x))
        shortcut = self.shortcut(out) if self.projection else x
        out = self.conv1(out)
        out = self.conv2(self.dropout(self.act2(self.bn2(out))))
        return out + shortcut


BLOCKS: dict[str, type[nn.Module]] = {
    "basic": BasicBlock, "bottleneck": Bottleneck, "preact": PreActBlock,
}


class ResNet(nn.Module):
    """A residual network: stem, stages of blocks, global average pool, linear classifier.

    ``block`` is basic, bottleneck or preact; ``layers`` the blocks per stage; stage ``s``
    has ``width * 2**s`` planes (times ``widen`` for wide ResNets). ``stem``: ``cifar``
    (3x3/1 conv), ``imagenet`` (7x7/2 conv + 3x3/2 max-pool) or ``auto`` (ImageNet stem
    from 128x128 inputs on). ``deep_stem`` uses three 3x3 convs (ResNet-C). Pre-activation
    networks start with a bare conv and end with BN - act before the pool.
    """

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                 name: str = "resnet", block: str = "basic",
                 layers: Sequence[int] = (2, 2, 2, 2), width: int = 64, widen: int = 1,
                 stem_width: int | None = None, stem: str = "auto", deep_stem: bool = False,
                 shortcut: str = "B", se_reduction: int = 0, dropout: float = 0.0,
                 block_dropout: float = 0.0) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"{name} block must be one of {', '.join(BLOCKS)}; got {block!r}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"{name} shortcut must be one of {', '.join(SHORTCUTS)}; "
                             f"got {shortcut!r}")
        check_positive(name, width=width, widen=widen, se_reduction=se_reduction or 1)
        check_dropout(name, dropout)
        check_dropout(name, block_dropout)
        stem = resolve_stem(name, stem, image_size)
        check_image_size(name, image_size, 32 if stem == "imagenet" else 8)
        block_cls = BLOCKS[block]
        preact = block == "preact"
        stem_width = stem_width or width
        self.stem = self._make_stem(act, in_channels, stem_width, stem, deep_stem, preact)
        stages: list[nn.Module] = []
        in_planes = stem_width
        for index, count in enumerate(layers):
            planes = width * widen * 2 ** index
            blocks = []
            for position in range(count):
                stride = 2 if index > 0 and position == 0 else 1
                blocks.append(block_cls(act, in_planes, planes, stride, shortcut=shortcut,
                                        se_reduction=se_reduction, dropout=block_dropout))
                in_planes = planes * block_cls.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head_norm: nn.Module = (nn.Sequential(nn.BatchNorm2d(in_planes),
                                                   act.build(in_planes))
                                     if preact else nn.Identity())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_planes, num_classes)
        self.fixed_activation_sites = (SqueezeExcite.FIXED_SITE,) if se_reduction else ()

    @staticmethod
    def _make_stem(act: ActSpec, in_channels: int, width: int, stem: str, deep_stem: bool,
                   preact: bool) -> nn.Sequential:
        if deep_stem:
            stride = 2 if stem == "imagenet" else 1
            layers: list[nn.Module] = [
                conv_bn_act(act, in_channels, width // 2, 3, stride=stride),
                conv_bn_act(act, width // 2, width // 2, 3),
                conv_bn_act(act, width // 2, width, 3),
            ]
            if stem == "imagenet":
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))
            return nn.Sequential(*layers)
        if stem == "imagenet":
            return imagenet_stem(act, in_channels, width)
        if preact:  # the first block's BN - act follows
            return nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False))
        return conv_bn_act(act, in_channels, width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head_norm(self.stages(self.stem(x)))
        return self.fc(self.dropout(self.pool(out).flatten(1)))


def build_cifar_resnet(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                       depth: int = 20, width: int = 16, shortcut: str = "A") -> ResNet:
    """CIFAR ResNet of depth 6n + 2 (He et al. 2016, section 4.2): 3x3 stem with 16
    channels, three stages of n basic blocks (16, 32, 64 channels), option-A shortcuts
    by default (``shortcut='B'`` projects with 1x1 conv + BN)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR resnet depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth}")
    return ResNet(act, num_classes, in_channels, image_size, name=f"resnet{depth}",
                  block="basic", layers=((depth - 2) // 6,) * 3, width=width, stem="cifar",
                  shortcut=shortcut)


RESNET = "He et al. 2016, Deep residual learning for image recognition"
PREACT = "He et al. 2016, Identity mappings in deep residual networks"
TRICKS = "He et al. 2019, Bag of tricks (ResNet-C/D)"
SE = "Hu et al. 2018, Squeeze-and-excitation networks"
WIDE = "Zagoruyko & Komodakis 2016, Wide residual networks"


# -- CIFAR ResNets (He et al. 2016, section 4.2): depth 6n + 2, option-A shortcuts ---------
@MODELS.register("resnet20", family="resnet", reference=RESNET)
def resnet20(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
             width: int = 16, shortcut: str = "A") -> ResNet:
    """CIFAR ResNet-20: three stages of 3 basic blocks (0.27 M parameters)."""
    return build_cifar_resnet(act, num_classes, in_channels, image_size, depth=20,
                              width=width, shortcut=shortcut)


@MODELS.register("resnet32", family="resnet", reference=RESNET)
def resnet32(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
             width: int = 16, shortcut: str = "A") -> ResNet:
    """CIFAR ResNet-32: three stages of 5 basic blocks (0.46 M parameters)."""
    return build_cifar_resnet(act, num_classes, in_channels, image_size, depth=32,
                              width=width, shortcut=shortcut)


@MODELS.register("resnet44", family="resnet", reference=RESNET)
def resnet44(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
             width: int = 16, shortcut: str = "A") -> ResNet:
    """CIFAR ResNet-44: three stages of 7 basic blocks (0.66 M parameters)."""
    return build_cifar_resnet(act, num_classes, in_channels, image_size, depth=44,
                              width=width, shortcut=shortcut)


@MODELS.register("resnet56", family="resnet", reference=RESNET)
def resnet56(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
             width: int = 16, shortcut: str = "A") -> ResNet:
    """CIFAR ResNet-56: three stages of 9 basic blocks (0.85 M parameters)."""
    return build_cifar_resnet(act, num_classes, in_channels, image_size, depth=56,
                              width=width, shortcut=shortcut)


@MODELS.register("resnet110", family="resnet", reference=RESNET)
def resnet110(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
              width: int = 16, shortcut: str = "A") -> ResNet:
    """CIFAR ResNet-110: three stages of 18 basic blocks (1.7 M parameters)."""
    return build_cifar_resnet(act, num_classes, in_channels, image_size, depth=110,
                              width=width, shortcut=shortcut)


# -- the ImageNet family: block type, depth, shortcut and stem style make the variant; ----
# -- width, stem (auto: ImageNet stem from 128 px on) and dropout are options --------------
@MODELS.register("resnet18", family="resnet", reference=RESNET)
def resnet18(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
             width: int = 64, stem: str = "auto", dropout: float = 0.0) -> ResNet:
    """ResNet-18: basic blocks (2, 2, 2, 2), 1x1 projection shortcuts."""
    return ResNet(act, num_classes, in_channels, image_size, name="resnet18", block="basic",
                  layers=(2, 2, 2, 2), width=width, stem=stem, dropout=dropout)


@MODELS.register("resnet34", family="resnet", reference=RESNET)
def resnet34(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
             width: int = 64, stem: str = "auto", dropout: float = 0.0) -> ResNet:
    """ResNet-34: basic blocks (3, 4, 6, 3), 1x1 projection shortcuts."""
    return ResNet(act, num_classes, in_channels, image_size, name="resnet34", block="basic",
                  layers=(3, 4, 6, 3), width=width, stem=stem, dropout=dropout)


@MODELS.register("resnet50", family="resnet", reference=RESNET)
def resnet50(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
             width: int = 64, stem: str = "auto", dropout: float = 0.0) -> ResNet:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3), striding in the 3x3 convolution."""
    return ResNet(act, num_classes, in_channels, image_size, name="resnet50",
                  block="bottleneck", layers=(3, 4, 6, 3), width=width, stem=stem,
                  dropout=dropout)


@MODELS.register("preact_resnet18", family="resnet", reference=PREACT)
def preact_resnet18(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                    width: int = 64, stem: str = "auto", dropout: float = 0.0) -> ResNet:
    """Pre-activation ResNet-18: BN - act - conv blocks (2, 2, 2, 2)."""
    return ResNet(act, num_classes, in_channels, image_size, name="preact_resnet18",
                  block="preact", layers=(2, 2, 2, 2), width=width, stem=stem,
                  dropout=dropout)


@MODELS.register("xresnet18", family="resnet", reference=TRICKS)
def xresnet18(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
              width: int = 64, stem: str = "auto", dropout: float = 0.0) -> ResNet:
    """ResNet-18 with the deep stem (ResNet-C) and average-pool shortcuts (ResNet-D)."""
    return ResNet(act, num_classes, in_channels, image_size, name="xresnet18",
                  block="basic", layers=(2, 2, 2, 2), width=width, stem=stem,
                  deep_stem=True, shortcut="D", dropout=dropout)


@MODELS.register("xresnet34", family="resnet", reference=TRICKS)
def xresnet34(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
              width: int = 64, stem: str = "auto", dropout: float = 0.0) -> ResNet:
    """ResNet-34 with the deep stem (ResNet-C) and average-pool shortcuts (ResNet-D)."""
    return ResNet(act, num_classes, in_channels, image_size, name="xresnet34",
                  block="basic", layers=(3, 4, 6, 3), width=width, stem=stem,
                  deep_stem=True, shortcut="D", dropout=dropout)


@MODELS.register("xresnet50", family="resnet", reference=TRICKS)
def xresnet50(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
              width: int = 64, stem: str = "auto", dropout: float = 0.0) -> ResNet:
    """ResNet-50 with the deep stem (ResNet-C) and average-pool shortcuts (ResNet-D)."""
    return ResNet(act, num_classes, in_channels, image_size, name="xresnet50",
                  block="bottleneck", layers=(3, 4, 6, 3), width=width, stem=stem,
                  deep_stem=True, shortcut="D", dropout=dropout)


@MODELS.register("se_resnet18", family="resnet", reference=SE)
def se_resnet18(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                width: int = 64, stem: str = "auto", se_reduction: int = 16,
                dropout: float = 0.0) -> ResNet:
    """ResNet-18 with a squeeze-and-excitation block (reduction ``se_reduction``, a
    sigmoid gate fixed by the architecture) before each addition."""
    return ResNet(act, num_classes, in_channels, image_size, name="se_resnet18",
                  block="basic", layers=(2, 2, 2, 2), width=width, stem=stem,
                  se_reduction=se_reduction, dropout=dropout)


# -- wide ResNets: WRN-depth-widen -------------------------------------------------------
@MODELS.register("wrn", family="resnet", reference=WIDE)
def wrn(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
        depth: int = 16, widen: int = 4, dropout: float = 0.0) -> ResNet:
    """WRN-depth-widen (Zagoruyko & Komodakis 2016): pre-activation basic blocks, widths
    16k, 32k, 64k, a 16-channel stem, dropout between the convolutions of each block."""
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"wrn depth must be 6n + 4 (10, 16, 22, 28, 40, ...), got {depth}")
    return ResNet(act, num_classes, in_channels, image_size, name=f"wrn{depth}_{widen}",
                  block="preact", layers=((depth - 4) // 6,) * 3, width=16, widen=widen,
                  stem_width=16, stem="cifar", block_dropout=dropout)


@MODELS.register("wrn16_4", family="resnet", reference=WIDE)
def wrn16_4(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
            dropout: float = 0.0) -> ResNet:
    """WRN-16-4 (2.7 M parameters)."""
    return wrn(act, num_classes, in_channels, image_size, depth=16, widen=4, dropout=dropout)


@MODELS.register("wrn16_8", family="resnet", reference=WIDE)
def wrn16_8(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
            dropout: float = 0.0) -> ResNet:
    """WRN-16-8 (11 M parameters)."""
    return wrn(act, num_classes, in_channels, image_size, depth=16, widen=8, dropout=dropout)


@MODELS.register("wrn22_8", family="resnet", reference=WIDE)
def wrn22_8(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
            dropout: float = 0.0) -> ResNet:
    """WRN-22-8 (17 M parameters)."""
    return wrn(act, num_classes, in_channels, image_size, depth=22, widen=8, dropout=dropout)


@MODELS.register("wrn28_10", family="resnet", reference=WIDE)
def wrn28_10(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
             dropout: float = 0.0) -> ResNet:
    """WRN-28-10 (36.5 M parameters)."""
    return wrn(act, num_classes, in_channels, image_size, depth=28, widen=10, dropout=dropout)


@MODELS.register("wrn40_4", family="resnet", reference=WIDE)
def wrn40_4(act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
            dropout: float = 0.0) -> ResNet:
    """WRN-40-4 (8.9 M parameters)."""
    return wrn(act, num_classes, in_channels, image_size, depth=40, widen=4, dropout=dropout)
