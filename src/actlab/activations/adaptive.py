"""Learnable activations: Swish-beta, FReLU, PELU, TAct/mTAct, the adaptive units of Hu et
al. and their normalized weighted combinations.

Every parameter is a float32 ``nn.Parameter`` with a stable name. One scalar per
activation site by default; ``per_channel=True`` learns one value per channel where the
definition allows it. :meth:`Activation.tracked_values` reports what the engine stores per
epoch (the parameters, plus derived values such as the normalized combination weights).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from actlab.activations.base import Activation, ActProperties, register_activation
from actlab.activations.learnable import per_site_parameter

INF = float("inf")


def _broadcast(param: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-site (shape [1]) or per-channel (shape [C]) parameter shaped to act on ``x``."""
    if param.numel() == 1 or x.dim() < 2:
        return param.to(x.dtype)
    return param.to(x.dtype).view(1, -1, *([1] * (x.dim() - 2)))


@register_activation("swish_beta", aliases=("swish-beta", "swishbeta"))
class SwishBeta(Activation):
    """x * sigmoid(beta * x) with learnable beta (start 1). Ramachandran, Zoph & Le 2017."""

    properties = ActProperties(
        formula="x * sigmoid(beta * x)", reference="Ramachandran et al. 2017",
        output_range=(-0.28, INF), monotonic=False, learnable=("beta",),
    )

    def __init__(self, beta: float = 1.0, per_channel: bool = False,
                 channels: int | None = None) -> None:
        super().__init__()
        self.beta = per_site_parameter(beta, per_channel, channels, "swish_beta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(_broadcast(self.beta, x) * x)


@register_activation("frelu")
class FReLU(Activation):
    """relu(x) + b with learnable b (start 0): the flexible ReLU of Qiu, Xu & Cai 2018.

    Not the 2020 "funnel" FReLU. Directly before a BatchNorm the shift b is cancelled by
    the normalization (it only moves the batch mean), so it learns nothing there.
    """

    properties = ActProperties(
        formula="max(0, x) + b", reference="Qiu, Xu & Cai 2018", output_range=(-INF, INF),
        smooth=False, learnable=("bias",),
    )

    def __init__(self, bias: float = 0.0, per_channel: bool = False,
                 channels: int | None = None) -> None:
        super().__init__()
        self.bias = per_site_parameter(bias, per_channel, channels, "frelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) + _broadcast(self.bias, x)


@register_activation("pelu")
class PELU(Activation):
    """Parametric ELU (Trottier, Giguère & Chaib-draa 2017), a, b > 0 learnable, start 1:

        (a / b) * x            for x >= 0
        a * (exp(x / b) - 1)   for x < 0

    At a = b = 1 it is ELU. As in the reference, a and b are kept at least 0.1 by
    projecting them after every optimizer step (:meth:`constrain`).
    """

    properties = ActProperties(
        formula="(a/b) x if x >= 0 else a (exp(x/b) - 1)", reference="Trottier et al. 2017",
        # f' is a/b on both sides of 0 (smooth); f > -a, and a > 0 stays (constrain).
        output_range=(-1.0, INF), range_text="(-a, inf)", learnable=("a", "b"),
    )
    minimum = 0.1

    def __init__(self, a: float = 1.0, b: float = 1.0, per_channel: bool = False,
                 channels: int | None = None) -> None:
        super().__init__()
        if a < self.minimum or b < self.minimum:
            raise ValueError(f"pelu a and b must be at least {self.minimum}, got {a}, {b}")
        self.a = per_site_parameter(a, per_channel, channels, "pelu")
        self.b = per_site_parameter(b, per_channel, channels, "pelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = _broadcast(self.a, x), _broadcast(self.b, x)
        negative = a * torch.expm1(torch.clamp(x, max=0.0) / b)
        return torch.where(x >= 0, (a / b) * x, negative)

    @torch.no_grad()
    def constrain(self) -> None:
        self.a.clamp_(min=self.minimum)
        self.b.clamp_(min=self.minimum)


class _TActBase(Activation):
    """(2A x + 2B) * sigmoid(2C x), the stable form of (A x + B)(tanh(C x) + 1)."""

    squared: bool = False
    random_init: ClassVar[dict[str, tuple[float, float]]] = {"alpha": (0.0, 0.5),
                                                             "beta": (0.0, 0.5)}

    def _draw(self, name: str) -> float:
        low, high = self.random_init[name]
        return float(low + torch.rand((), device="cpu") * (high - low))

    def __init__(self, alpha: float | None = None, beta: float | None = None,
                 per_channel: bool = False, channels: int | None = None) -> None:
        super().__init__()
        # The reference draws alpha, beta ~ U(0, 0.5); here the draw is per site, from
        # torch's generator, so a seeded run gets the same values every time.
        alpha = self._draw("alpha") if alpha is None else alpha
        beta = self._draw("beta") if beta is None else beta
        self.alpha = per_site_parameter(alpha, per_channel, channels, "tact")
        self.beta = per_site_parameter(beta, per_channel, channels, "tact")

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(slope, sharpness): f(x) = (slope x + 1 - slope) * sigmoid(sharpness x)."""
        alpha, beta = _broadcast(self.alpha, x), _broadcast(self.beta, x)
        if self.squared:
            return alpha * alpha, 1.0 + beta * beta
        return alpha, 1.0 + beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slope, sharpness = self.coefficients(x)
        return (slope * x + 1.0 - slope) * torch.sigmoid(sharpness * x)


@register_activation("tact")
class TAct(_TActBase):
    """TAct(x; alpha, beta) = (A x + B)(tanh(C x) + 1), A = alpha/2, B = 1/2 - A,
    C = (1 + beta)/2; computed as (alpha x + 1 - alpha) sigmoid((1 + beta) x).

    From the Banuelos research group's code. alpha = 1, beta = 0 is SiLU; alpha = 1 is
    Swish with slope 1 + beta; beta -> infinity approaches ReLU; alpha = 0 is a sigmoid.
    alpha and beta start as seeded U(0, 0.5) draws per site unless given.
    """

    properties = ActProperties(
        formula="(alpha x + 1 - alpha) * sigmoid((1 + beta) x)",
        reference="Banuelos group (TAct)", output_range=(-INF, INF), monotonic=False,
        learnable=("alpha", "beta"),
    )


@register_activation("mtact")
class MTAct(_TActBase):
    """mTAct: TAct with A = alpha^2/2 and C = (1 + beta^2)/2, i.e.
    (alpha^2 x + 1 - alpha^2) sigmoid((1 + beta^2) x)."""

    properties = ActProperties(
        formula="(alpha^2 x + 1 - alpha^2) * sigmoid((1 + beta^2) x)",
        reference="Banuelos group (mTAct)", output_range=(-INF, INF), monotonic=False,
        learnable=("alpha", "beta"),
    )
    squared = True


class _AffineGate(Activation):
    """b * g(a z + c) + d with scalars a, b, c, d (Hu et al., IEEE TNNLS 2023)."""

    def __init__(self, a: float = 1.0, b: float = 1.0, c: float = 0.0, d: float = 0.0) -> None:
        super().__init__()
        for name, value in (("a", a), ("b", b), ("c", c), ("d", d)):
            setattr(self, name, per_site_parameter(value, False, None, type(self).__name__))

    def gate(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.b * self.gate(self.a * z + self.c) + self.d


@register_activation("asigmoid")
class ASigmoid(_AffineGate):
    """ASigmoid(z) = b sigmoid(a z + c) + d, start a = 1, b = 1, c = 0, d = 0.

    Hu et al. 2023, "Adaptively customizing activation functions for various layers"."""

    properties = ActProperties(
        formula="b * sigmoid(a z + c) + d", reference="Hu et al. 2023",
        output_range=(-INF, INF), monotonic=False, learnable=("a", "b", "c", "d"),
    )

    def gate(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z)


@register_activation("atanh")
class ATanh(_AffineGate):
    """ATanh(z) = b tanh(a z + c) + d, start a = 1, b = 1, c = 0, d = 0. Hu et al. 2023."""

    properties = ActProperties(
        formula="b * tanh(a z + c) + d", reference="Hu et al. 2023", output_range=(-INF, INF),
        monotonic=False, zero_centred=True, learnable=("a", "b", "c", "d"),
    )

    def gate(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z)


@register_activation("arelu")
class AReLU(Activation):
    """AReLU(z) = max(a z + c, b z + d), the adaptive ReLU of Hu et al. 2023 (IEEE TNNLS).
    Not the attention-based AReLU of Chen et al. 2020, which is ``attention_relu``.

    ``start='relu'`` (default): a = 1, c = 0, b = 0, d = 0, i.e. it starts as ReLU.
    ``start='identity'``: the reference's a = b = 1, which starts as the identity.
    """

    properties = ActProperties(
        formula="max(a z + c, b z + d)", reference="Hu et al. 2023", output_range=(-INF, INF),
        monotonic=False, smooth=False, learnable=("a", "b", "c", "d"),
    )

    def __init__(self, start: str = "relu") -> None:
        super().__init__()
        if start not in ("relu", "identity"):
            raise ValueError(f"arelu start must be 'relu' or 'identity', got {start!r}")
        b = 0.0 if start == "relu" else 1.0
        for name, value in (("a", 1.0), ("b", b), ("c", 0.0), ("d", 0.0)):
            setattr(self, name, per_site_parameter(value, False, None, "arelu"))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.maximum(self.a * z + self.c, self.b * z + self.d)


COMBO_WEIGHTS = ("learned", "third", "one")
# softplus(SOFTPLUS_ONE) = 1: learnable weights start at p = 1 each, so X = Y = Z = 1/3.
SOFTPLUS_ONE = math.log(math.e - 1.0)


class _Combination(Activation):
    """X f1 + Y f2 + Z f3 with X = p1 / (p1 + p2 + p3), ..., p_i = softplus(q_i) > 0.

    ``weights='learned'`` (default) learns q and starts at X = Y = Z = 1/3;
    ``'third'`` freezes X = Y = Z = 1/3; ``'one'`` freezes all three weights at 1.
    """

    def __init__(self, weights: str = "learned") -> None:
        super().__init__()
        if weights not in COMBO_WEIGHTS:
            raise ValueError(f"combination weights must be one of {', '.join(COMBO_WEIGHTS)}, "
                             f"got {weights!r}")
        self.mode = weights
        if weights == "learned":
            self.logits = nn.Parameter(torch.full((3,), SOFTPLUS_ONE, dtype=torch.float32))
        else:
            value = 1.0 / 3.0 if weights == "third" else 1.0
            self.register_buffer("fixed", torch.full((3,), value, dtype=torch.float32))

    def mixing_weights(self) -> torch.Tensor:
        """(X, Y, Z)."""
        if self.mode != "learned":
            return self.fixed
        positive = F.softplus(self.logits)
        return positive / positive.sum()

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mixing_weights().to(x.dtype)
        first, second, third = self.parts(x)
        return w[0] * first + w[1] * second + w[2] * third

    def tracked_values(self) -> dict[str, float]:
        values = super().tracked_values()
        with torch.no_grad():
            for name, value in zip("XYZ", self.mixing_weights().tolist(), strict=True):
                values[name] = value
        return values


@register_activation("combo_adaptive", aliases=("method1",))
class ComboAdaptive(_Combination):
    """"Method 1": X ATanh(x) + Y ASigmoid(x) + Z AReLU(x), each unit with its own a, b, c, d.

    Normalized weights as in the study that motivates them; see :class:`_Combination`."""

    properties = ActProperties(
        formula="X ATanh(x) + Y ASigmoid(x) + Z AReLU(x)", reference="Hu et al. 2023",
        output_range=(-INF, INF), monotonic=False, smooth=False,
        learnable=("logits", "atanh.*", "asigmoid.*", "arelu.*"),
    )

    def __init__(self, weights: str = "learned") -> None:
        super().__init__(weights)
        self.atanh = ATanh()
        self.asigmoid = ASigmoid()
        self.arelu = AReLU()

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.atanh(x), self.asigmoid(x), self.arelu(x)


@register_activation("combo_fixed", aliases=("method2",))
class ComboFixed(_Combination):
    """"Method 2": X tanh(x) + Y sigmoid(x) + Z relu(x), only the weights learnable."""

    properties = ActProperties(
        formula="X tanh(x) + Y sigmoid(x) + Z relu(x)", reference="Hu et al. 2023",
        output_range=(-INF, INF), smooth=False, learnable=("logits",),
    )

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return torch.tanh(x), torch.sigmoid(x), F.relu(x)


@register_activation("attention_relu", aliases=("arelu_chen",))
class AttentionReLU(Activation):
    """The attention-based AReLU of Chen et al. 2020 ("AReLU: Attention-based Rectified
    Linear Unit"): relu(x) (1 + sigmoid(beta)) - clamp(alpha, 0.01, 0.99) relu(-x), i.e.
    slope 1 + sigmoid(beta) for x >= 0 and clamp(alpha, 0.01, 0.99) for x < 0, with the
    paper's start alpha = 0.9, beta = 2. (``arelu`` is Hu et al. 2023's max(a z + c,
    b z + d), a different function.)"""

    properties = ActProperties(
        formula="relu(x) (1 + sigmoid(beta)) - clamp(alpha, 0.01, 0.99) relu(-x)",
        reference="Chen et al. 2020", output_range=(-INF, INF), smooth=False,
        learnable=("alpha", "beta"),
    )

    def __init__(self, alpha: float = 0.9, beta: float = 2.0, per_channel: bool = False,
                 channels: int | None = None) -> None:
        super().__init__()
        self.alpha = per_site_parameter(alpha, per_channel, channels, "attention_relu")
        self.beta = per_site_parameter(beta, per_channel, channels, "attention_relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        negative = torch.clamp(_broadcast(self.alpha, x), 0.01, 0.99)
        positive = 1 + torch.sigmoid(_broadcast(self.beta, x))
        return F.relu(x) * positive - negative * F.relu(-x)
