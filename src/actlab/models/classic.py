"""Classic plain CNNs: AlexNet, VGG-11/16 and SqueezeNet.

Each has an ImageNet layout (the torchvision layout, so parameter counts equal the
published ones: AlexNet 61,100,840, VGG-16 138,357,544, SqueezeNet 1.0 1,248,424 for
1000 classes) and a CIFAR layout for 32x32 (and 28x28) inputs, chosen by ``stem``
(``auto`` picks ImageNet from 128x128 on).
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
    flat_features,
    resolve_stem,
)


def _classifier(act: ActSpec, features: int, hidden: int, num_classes: int, dropout: float
                ) -> nn.Sequential:
    """dropout - fc(hidden) - act - dropout - fc(hidden) - act - fc(classes) (AlexNet/VGG)."""
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(features, hidden), act.build(hidden),
        nn.Dropout(dropout), nn.Linear(hidden, hidden), act.build(hidden),
        nn.Linear(hidden, num_classes),
    )


class AlexNet(nn.Module):
    """AlexNet (Krizhevsky, Sutskever & Hinton 2012), single-tower as in torchvision.

    ImageNet layout: 11x11/4 conv(64) - pool - 5x5 conv(192) - pool - 3x3 convs 384, 256,
    256 - pool - 6x6 adaptive pool - fc 4096 - fc 4096 - fc. CIFAR layout (for 28-64 px):
    the same five convolutions with a 3x3/2 first conv and 2x2 pools (ceil mode), giving
    2x2x256 features for 32x32 inputs, and ``hidden`` units (4096) in the classifier.
    """

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                 hidden: int, dropout: float, stem: str) -> None:
        super().__init__()
        check_positive("alexnet", hidden=hidden)
        check_dropout("alexnet", dropout)
        stem = resolve_stem("alexnet", stem, image_size)
        if stem == "imagenet":
            check_image_size("alexnet", image_size, 63)
            first = nn.Conv2d(in_channels, 64, 11, stride=4, padding=2)

            def pool() -> nn.Module:
                return nn.MaxPool2d(3, stride=2)
        else:
            check_image_size("alexnet", image_size, 16)
            first = nn.Conv2d(in_channels, 64, 3, stride=2, padding=1)

            def pool() -> nn.Module:
                return nn.MaxPool2d(2, ceil_mode=True)
        self.features = nn.Sequential(
            first, act.build(64), pool(),
            nn.Conv2d(64, 192, 5, padding=2), act.build(192), pool(),
            nn.Conv2d(192, 384, 3, padding=1), act.build(384),
            nn.Conv2d(384, 256, 3, padding=1), act.build(256),
            nn.Conv2d(256, 256, 3, padding=1), act.build(256), pool(),
        )
        self.pool = nn.AdaptiveAvgPool2d(6) if stem == "imagenet" else nn.Identity()
        features = flat_features(nn.Sequential(self.features, self.pool), in_channels,
                                 image_size)
        self.classifier = _classifier(act, features, hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


VGG_CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M"),
}


class VGG(nn.Module):
    """VGG (Simonyan & Zisserman 2015), configurations A (11) and D (16), optional BN.

    ImageNet layout: 7x7 adaptive pool and two 4096-unit hidden layers (torchvision).
    CIFAR layout: the convolutions (2x2 pools in ceil mode, so 28x28 works) followed by a
    global average pool and one linear classifier on 512 features, the common CIFAR
    variant (VGG-16 with BN: 14,728,266 parameters for 10 classes). Convolutions keep
    their bias with BN, as both references do.
    """

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int,
                 depth: int = 16, batchnorm: bool = True, width: int = 64,
                 hidden: int = 4096, dropout: float = 0.5, stem: str = "auto") -> None:
        super().__init__()
        name = f"vgg{depth}"
        if depth not in VGG_CONFIGS:
            raise ValueError(f"vgg depth must be one of {sorted(VGG_CONFIGS)}, got {depth}")
        check_positive(name, width=width, hidden=hidden)
        check_dropout(name, dropout)
        stem = resolve_stem(name, stem, image_size)
        check_image_size(name, image_size, 32 if stem == "imagenet" else 16)
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG_CONFIGS[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=stem == "cifar"))
                continue
            out = int(item) * width // 64
            layers.append(nn.Conv2d(channels, out, 3, padding=1))
            if batchnorm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(act.build(out))
            channels = out
        self.features = nn.Sequential(*layers)
        if stem == "imagenet":
            self.pool: nn.Module = nn.AdaptiveAvgPool2d(7)
            self.classifier = _classifier(act, channels * 49, hidden, num_classes, dropout)
        else:
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class Fire(nn.Module):
    """SqueezeNet's fire module: 1x1 squeeze - act, then 1x1 and 3x3 expands - act, concat."""

    def __init__(self, act: ActSpec, in_channels: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.squeeze_act = act.build(squeeze)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand1x1_act = act.build(expand)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)
        self.expand3x3_act = act.build(expand)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_act(self.squeeze(x))
        return torch.cat([self.expand1x1_act(self.expand1x1(x)),
                          self.expand3x3_act(self.expand3x3(x))], 1)


# (stem channels, stem kernel, fire modules as (squeeze, expand) with "M" for max-pools).
SQUEEZENET_CONFIGS: dict[str, tuple[int, int, tuple]] = {
    "1_0": (96, 7, ((16, 64), (16, 64), (32, 128), "M", (32, 128), (48, 192), (48, 192),
                    (64, 256), "M", (64, 256))),
    "1_1": (64, 3, ((16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192), (48, 192),
                    (64, 256), (64, 256))),
}


class SqueezeNet(nn.Module):
    """SqueezeNet 1.0 or 1.1 (Iandola et al. 2016, layout as in torchvision).

    The classifier is dropout - 1x1 conv(classes) - act - global average pool, as in the
    paper; ``final_act=False`` drops that last activation (with a bounded activation such
    as sigmoid it squeezes the logits into its range). The CIFAR layout uses a 3x3/1 first
    convolution and keeps the three 3x3/2 max-pools (32 -> 16 -> 8 -> 4).
    """

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                 version: str, dropout: float, final_act: bool, stem: str) -> None:
        super().__init__()
        if version not in SQUEEZENET_CONFIGS:
            raise ValueError(f"squeezenet version must be one of "
                             f"{', '.join(SQUEEZENET_CONFIGS)}; got {version!r}")
        check_dropout("squeezenet", dropout)
        stem = resolve_stem("squeezenet", stem, image_size)
        check_image_size("squeezenet", image_size, 32 if stem == "imagenet" else 8)
        stem_channels, kernel, fires = SQUEEZENET_CONFIGS[version]
        if stem == "cifar":
            first = nn.Conv2d(in_channels, stem_channels, 3, padding=1)
        else:
            first = nn.Conv2d(in_channels, stem_channels, kernel, stride=2)
        layers: list[nn.Module] = [first, act.build(stem_channels),
                                   nn.MaxPool2d(3, 2, ceil_mode=True)]
        channels = stem_channels
        for item in fires:
            if item == "M":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
                continue
            squeeze, expand = item
            layers.append(Fire(act, channels, squeeze, expand))
            channels = 2 * expand
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Conv2d(channels, num_classes, 1),
            act.build(num_classes) if final_act else nn.Identity(),
            nn.AdaptiveAvgPool2d(1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).flatten(1)


@MODELS.register("alexnet", family="plain", reference="Krizhevsky et al. 2012")
def alexnet(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
            hidden: int = 4096, dropout: float = 0.5, stem: str = "auto") -> AlexNet:
    """AlexNet, single-tower; the CIFAR layout below 64 px (``stem``: auto)."""
    return AlexNet(act, num_classes, in_channels, image_size, hidden=hidden, dropout=dropout,
                   stem=stem)


@MODELS.register("squeezenet", family="plain", reference="Iandola et al. 2016")
def squeezenet(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
               version: str = "1_0", dropout: float = 0.5, final_act: bool = True,
               stem: str = "auto") -> SqueezeNet:
    """SqueezeNet 1.0 or 1.1 (``version``); ``final_act=False`` leaves out the activation
    after the classifier convolution."""
    return SqueezeNet(act, num_classes, in_channels, image_size, version=version,
                      dropout=dropout, final_act=final_act, stem=stem)


@MODELS.register("vgg11", family="plain", reference="Simonyan & Zisserman 2015")
def vgg11(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
          batchnorm: bool = True, width: int = 64, hidden: int = 4096, dropout: float = 0.5,
          stem: str = "auto") -> VGG:
    """VGG-11 (configuration A), with BN by default."""
    return VGG(act, num_classes, in_channels, image_size, depth=11, batchnorm=batchnorm,
               width=width, hidden=hidden, dropout=dropout, stem=stem)


@MODELS.register("vgg16", family="plain", reference="Simonyan & Zisserman 2015")
def vgg16(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
          batchnorm: bool = True, width: int = 64, hidden: int = 4096, dropout: float = 0.5,
          stem: str = "auto") -> VGG:
    """VGG-16 (configuration D), with BN by default."""
    return VGG(act, num_classes, in_channels, image_size, depth=16, batchnorm=batchnorm,
               width=width, hidden=hidden, dropout=dropout, stem=stem)
