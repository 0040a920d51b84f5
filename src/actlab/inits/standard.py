"""Data-independent initializers: default, Xavier, He, LeCun, N(0, std), orthogonal."""

from __future__ import annotations

import math

import torch
from torch import nn

from actlab.inits.base import Initializer, register_init


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear or Conv weight: channels times receptive field."""
    if weight.dim() < 2:
        raise ValueError("fan-in and fan-out need a weight with at least 2 dimensions")
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _check_mode(mode: str) -> str:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return mode


@register_init("default", aliases=("pytorch", "torch_default"))
class Default(Initializer):
    """PyTorch's own layer initialization, kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)).

    Biases keep PyTorch's U(+-1/sqrt(fan_in)) too, because that is what "default" means
    in the studies that use it as a baseline.
    """

    reference = "PyTorch nn.Conv2d/nn.Linear reset_parameters"

    def apply(self, model: nn.Module, gain: float, batch: torch.Tensor | None = None) -> dict:
        for module in model.modules():
            is_leaf = next(module.children(), None) is None
            if is_leaf and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        return {}


class _GainInit(Initializer):
    uses_gain = True

    def __init__(self, gain: float | None = None) -> None:
        self.gain = gain


@register_init("xavier_uniform", aliases=("xavier", "glorot_uniform", "glorot"))
class XavierUniform(_GainInit):
    """U(+-b), b = gain * sqrt(6 / (fan_in + fan_out)). Glorot & Bengio 2010.

    With ``gain=1`` this is Glorot's original; by default the gain matches the activation.
    """

    reference = "Glorot & Bengio 2010"

    def init_weight(self, weight: torch.Tensor, gain: float) -> None:
        fan_in, fan_out = fans(weight)
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        weight.uniform_(-bound, bound)


@register_init("xavier_normal", aliases=("glorot_normal",))
class XavierNormal(_GainInit):
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)). Glorot & Bengio 2010."""

    reference = "Glorot & Bengio 2010"

    def init_weight(self, weight: torch.Tensor, gain: float) -> None:
        fan_in, fan_out = fans(weight)
        weight.normal_(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


@register_init("he_uniform", aliases=("kaiming_uniform",))
class HeUniform(_GainInit):
    """U(+-b), b = sqrt(3) * gain / sqrt(fan). He et al. 2015, "Delving deep into rectifiers"."""

    reference = "He et al. 2015"

    def __init__(self, mode: str = "fan_in", gain: float | None = None) -> None:
        super().__init__(gain)
        self.mode = _check_mode(mode)

    def init_weight(self, weight: torch.Tensor, gain: float) -> None:
        fan = fans(weight)[0 if self.mode == "fan_in" else 1]
        bound = math.sqrt(3.0) * gain / math.sqrt(fan)
        weight.uniform_(-bound, bound)


@register_init("he_normal", aliases=("he", "kaiming_normal", "kaiming"))
class HeNormal(_GainInit):
    """N(0, std^2), std = gain / sqrt(fan). He et al. 2015, "Delving deep into rectifiers"."""

    reference = "He et al. 2015"

    def __init__(self, mode: str = "fan_in", gain: float | None = None) -> None:
        super().__init__(gain)
        self.mode = _check_mode(mode)

    def init_weight(self, weight: torch.Tensor, gain: float) -> None:
        fan = fans(weight)[0 if self.mode == "fan_in" else 1]
        weight.normal_(0.0, gain / math.sqrt(fan))


@register_init("lecun_normal", aliases=("lecun",))
class LecunNormal(Initializer):
    """N(0, 1 / fan_in): LeCun et al. 1998; the pairing for SELU (Klambauer et al. 2017)."""

    reference = "LeCun et al. 1998"

    def init_weight(self, weight: torch.Tensor, gain: float) -> None:
        weight.normal_(0.0, 1.0 / math.sqrt(fans(weight)[0]))


@register_init("normal", aliases=("naive", "gaussian"))
class Normal(Initializer):
    """N(0, std^2) with std = 1 by default: the "naive" control that explodes with depth."""

    reference = "control"

    def __init__(self, std: float = 1.0) -> None:
        if std <= 0:
            raise ValueError(f"normal std must be positive, got {std}")
        self.std = float(std)

    def init_weight(self, weight: torch.Tensor, gain: float) -> None:
        weight.normal_(0.0, self.std)


@register_init("orthogonal")
class Orthogonal(_GainInit):
    """A (semi-)orthogonal matrix times the gain. Saxe, McClelland & Ganguli 2014."""

    reference = "Saxe et al. 2014"

    def init_weight(self, weight: torch.Tensor, gain: float) -> None:
        # torch's orthogonal_ views the weight as a matrix, which fails for channels_last
        # conv weights; draw into a contiguous tensor and copy (same random stream).
        dense = torch.empty(weight.shape, dtype=weight.dtype, device=weight.device)
        nn.init.orthogonal_(dense, gain=gain)
        weight.copy_(dense)
