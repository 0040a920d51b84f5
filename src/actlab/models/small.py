"""Small CNNs: LeNet-5 and the simple 3-conv + 2-FC network of the AF tutorial study."""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import ActSpec
from actlab.models.base import MODELS


def _flat_features(features: nn.Module, in_channels: int, image_size: int) -> int:
    """Number of features ``features`` produces for one image (a dry run, no grad)."""
    with torch.no_grad():
        out = features(torch.zeros(1, in_channels, image_size, image_size))
    return out.numel()


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998, "Gradient-based learning applied to document recognition").

    conv5(6) - act - pool2 - conv5(16) - act - pool2 - fc120 - act - fc84 - act - fc.
    For 28x28 inputs the first convolution pads by 2 so the geometry equals the paper's
    32x32 input; the classifier then has 16*5*5 inputs and the model 61,706 parameters for
    one input channel and 10 classes. Pooling is max pooling by default (``pool='avg'``
    gives the paper's subsampling, without its trainable coefficients).
    """

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int,
                 pool: str = "max") -> None:
        super().__init__()
        if image_size < 28:
            raise ValueError(f"lenet5 needs images of at least 28x28, got {image_size}")
        if pool not in ("max", "avg"):
            raise ValueError(f"lenet5 pool must be 'max' or 'avg', got {pool!r}")
        pooling = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
        padding = 2 if image_size < 32 else 0
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=padding), act.build(6), pooling(2),
            nn.Conv2d(6, 16, 5), act.build(16), pooling(2),
        )
        flat = _flat_features(self.features, in_channels, image_size)
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

    The network of the activation-function tutorial study (GUIDE section 5): widths
    ``width, 2*width, 4*width`` (32, 64, 128 by default) and a hidden layer of ``hidden``
    units before the classifier, with optional dropout before it.
    """

    def __init__(self, act: ActSpec, num_classes: int, in_channels: int, image_size: int,
                 width: int = 32, hidden: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        if image_size < 8:
            raise ValueError(f"simple_cnn needs images of at least 8x8, got {image_size}")
        if width < 1 or hidden < 1:
            raise ValueError("simple_cnn width and hidden must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"simple_cnn dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        channels = in_channels
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 3, padding=1), act.build(out), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*layers)
        flat = _flat_features(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, hidden), act.build(hidden),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


MODELS.add("lenet5", LeNet5, aliases=("lenet", "lenet-5"))
MODELS.add("simple_cnn", SimpleCNN, aliases=("simplecnn",))
