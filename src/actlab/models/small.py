"""Small CNNs: LeNet-5, the simple 3-conv + 2-FC network of the AF tutorial study and
the plain deep CNN of the He-initialization depth study."""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import ActSpec
from actlab.models.base import MODELS
from actlab.models.layers import check_dropout, check_image_size, check_positive, flat_features


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998, "Gradient-based learning applied to document recognition").

    conv5(6) - act - pool2 - conv5(16) - act - pool2 - fc120 - act - fc84 - act - fc.
    For 28x28 inputs the first convolution pads by 2 so the geometry equals the paper's
    32x32 input; the classifier then has 16*5*5 inputs and the model 61,706 parameters for
    one input channel and 10 classes. Pooling is max pooling by default (``pool='avg'``
    gives the paper's subsampling, without its trainable coefficients).
    """

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                 pool: str) -> None:
        super().__init__()
        check_image_size("lenet5", image_size, 28)
        if pool not in ("max", "avg"):
            raise ValueError(f"lenet5 pool must be 'max' or 'avg', got {pool!r}")
        pooling = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
        padding = 2 if image_size < 32 else 0
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=padding), act.build(6), pooling(2),
            nn.Conv2d(6, 16, 5), act.build(16), pooling(2),
        )
        flat = flat_features(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 120), act.build(120),
            nn.Linear(120, 84), act.build(84),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SimpleCNN(nn.Module):
    """Three conv blocks (conv3x3 - act - maxpool2) and two fully connected layers.

    The network of the activation-function tutorial study (docs/studies.md): widths
    ``width, 2*width, 4*width`` (32, 64, 128 by default) and a hidden layer of ``hidden``
    units before the classifier, with optional dropout before it.
    """

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                 width: int, hidden: int, dropout: float) -> None:
        super().__init__()
        check_image_size("simple_cnn", image_size, 8)
        check_positive("simple_cnn", width=width, hidden=hidden)
        check_dropout("simple_cnn", dropout)
        layers: list[nn.Module] = []
        channels = in_channels
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 3, padding=1), act.build(out), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*layers)
        flat = flat_features(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, hidden), act.build(hidden),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class DeepCNN(nn.Module):
    """A plain CNN of ``depth`` 3x3 convolutions of ``width`` filters and one linear classifier.

    The network of the He-initialization depth study (docs/studies.md, after He et al.
    2015, "Delving deep into rectifiers"): BatchNorm after every conv but the first
    (``batchnorm=False`` removes them all, ``batchnorm_first=True`` adds the first), the
    activation after each conv (after its BN) and a 2x2 max-pool after every
    ``pool_every``-th conv while the feature map is still at least 2x2, so depth 12 on
    32x32 inputs pools five times (32 -> 1) and skips the sixth.
    """

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int, *,
                 depth: int, width: int, batchnorm: bool, batchnorm_first: bool,
                 pool_every: int) -> None:
        super().__init__()
        check_positive("deep_cnn", depth=depth, width=width, pool_every=pool_every)
        check_image_size("deep_cnn", image_size, 4)
        layers: list[nn.Module] = []
        channels, size = in_channels, image_size
        for index in range(depth):
            norm = batchnorm and (index > 0 or batchnorm_first)
            layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=not norm))
            if norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(act.build(width))
            channels = width
            if (index + 1) % pool_every == 0 and size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(width * size * size, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@MODELS.register("lenet5", aliases=("lenet", "lenet-5"), family="plain",
                 reference="LeCun et al. 1998")
def lenet5(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
           pool: str = "max") -> LeNet5:
    """LeNet-5 (LeCun et al. 1998): two 5x5 convolutions and three fully connected
    layers; ``pool`` max or avg."""
    return LeNet5(act, num_classes, in_channels, image_size, pool=pool)


@MODELS.register("simple_cnn", aliases=("simplecnn",), family="plain",
                 reference="the AF tutorial study (docs/studies.md)")
def simple_cnn(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
               width: int = 32, hidden: int = 256, dropout: float = 0.0) -> SimpleCNN:
    """Three 3x3 convolutions with pooling and two fully connected layers."""
    return SimpleCNN(act, num_classes, in_channels, image_size, width=width, hidden=hidden,
                     dropout=dropout)


@MODELS.register("deep_cnn", aliases=("plain_cnn",), family="plain",
                 reference="He et al. 2015 depth study setup (docs/studies.md)")
def deep_cnn(act: ActSpec, num_classes: int, in_channels: int, image_size: int,
             depth: int = 5, width: int = 32, batchnorm: bool = True,
             batchnorm_first: bool = False, pool_every: int = 2) -> DeepCNN:
    """A plain (non-residual) CNN of ``depth`` 3x3 convolutions, for depth studies."""
    return DeepCNN(act, num_classes, in_channels, image_size, depth=depth, width=width,
                   batchnorm=batchnorm, batchnorm_first=batchnorm_first,
                   pool_every=pool_every)
