"""Building blocks shared by the model zoo, and the validation of model options.

Every block takes the activation as an :class:`ActSpec` and builds one module per
nonlinearity site, so no model can hard-code a ReLU.
"""

from __future__ import annotations

import torch
from torch import nn

from actlab.activations import ActSpec, resolve_act

STEMS = ("auto", "cifar", "imagenet")
# From this input size on, "auto" picks the ImageNet stem (strided 7x7 conv and max-pool).
# Below it the CIFAR stem keeps full resolution, as CIFAR/MNIST variants of these models do.
IMAGENET_STEM_FROM = 128


def resolve_stem(model: str, stem: str, image_size: int) -> str:
    """``'cifar'`` or ``'imagenet'`` for ``stem`` (``'auto'`` decides by image size)."""
    if stem not in STEMS:
        raise ValueError(f"{model} stem must be one of {', '.join(STEMS)}; got {stem!r}")
    if stem == "auto":
        return "imagenet" if image_size >= IMAGENET_STEM_FROM else "cifar"
    return stem


def check_image_size(model: str, image_size: int, minimum: int, hint: str = "") -> None:
    if image_size < minimum:
        extra = f" ({hint})" if hint else ""
        raise ValueError(f"{model} needs images of at least {minimum}x{minimum}, got "
                         f"{image_size}x{image_size}{extra}")


def check_positive(model: str, **values: int | float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{model} {name} must be positive, got {value}")


def check_dropout(model: str, dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{model} dropout must be in [0, 1), got {dropout}")


def flat_features(features: nn.Module, in_channels: int, image_size: int) -> int:
    """Number of features ``features`` produces for one image (a dry run, no grad).

    The dry run follows the default device, so building under ``torch.device('meta')``
    (to count the parameters of a large model) costs nothing.
    """
    with torch.no_grad():
        out = features(torch.zeros(1, in_channels, image_size, image_size))
    return out.numel()


def conv_bn_act(act: ActSpec | None, in_channels: int, out_channels: int, kernel: int,
                stride: int = 1, groups: int = 1, norm: bool = True,
                bias: bool | None = None, bn_eps: float = 1e-5) -> nn.Sequential:
    """conv (same padding) - BatchNorm - activation; ``act=None`` leaves the output linear.

    The conv has no bias when a BatchNorm follows (it would be cancelled), unless asked.
    """
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel, stride,
                                         padding=kernel // 2, groups=groups,
                                         bias=(not norm) if bias is None else bias)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels, eps=bn_eps))
    if act is not None:
        layers.append(act.build(out_channels))
    return nn.Sequential(*layers)


def imagenet_stem(act: ActSpec, in_channels: int, out_channels: int) -> nn.Sequential:
    """7x7/2 conv - BN - act - 3x3/2 max-pool (He et al. 2016, ResNet ImageNet stem)."""
    return nn.Sequential(
        *conv_bn_act(act, in_channels, out_channels, 7, stride=2),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu, Shen & Sun 2018): x * gate(W2 act(W1 avgpool(x))).

    The excitation's inner nonlinearity (ReLU in the paper) is the study's activation;
    the final ``gate`` is a sigmoid by design (it produces channel weights in (0, 1)) and
    is a declared fixed site (suffix ``se.gate``) of every model that uses this block.
    """

    FIXED_SITE = "se.gate"

    def __init__(self, act: ActSpec, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = act.build(hidden)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = resolve_act("sigmoid").build(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = x.mean(dim=(2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(weights))))
