"""Fixed (parameter-free) activation functions.

Each class is a thin module around PyTorch's own kernel for the function, so the fast,
numerically stable implementation is used, and records the paper that defines it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from actlab.activations import kernels
from actlab.activations.base import Activation, ActProperties, register_activation

INF = float("inf")


@register_activation("relu", aliases=("rectifier",))
class ReLU(Activation):
    """max(0, x). Nair & Hinton 2010; Glorot, Bordes & Bengio 2011."""

    properties = ActProperties(
        formula="max(0, x)", reference="Nair & Hinton 2010", output_range=(0.0, INF),
        smooth=False, rectifier=True,
    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


@register_activation("leaky_relu", aliases=("lrelu", "leakyrelu"))
class LeakyReLU(Activation):
    """max(0, x) + slope * min(0, x). Maas, Hannun & Ng 2013.

    The default slope is 0.01 (PyTorch's); other libraries use 0.2 or 0.3, so a
    non-default slope is part of the label in reports, e.g. ``leaky_relu(slope=0.3)``.
    """

    properties = ActProperties(
        formula="max(0, x) + slope * min(0, x)", reference="Maas et al. 2013", smooth=False,
    )

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        if not 0.0 <= slope < 1.0:
            raise ValueError(f"leaky_relu slope must be in [0, 1), got {slope}")
        self.slope = float(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.slope)


@register_activation("elu")
class ELU(Activation):
    """x for x > 0, alpha * (exp(x) - 1) otherwise. Clevert, Unterthiner & Hochreiter 2016."""

    properties = ActProperties(
        formula="x if x > 0 else alpha * (exp(x) - 1)", reference="Clevert et al. 2016",
        # f'(0-) = alpha and f'(0+) = 1: continuous at the default alpha = 1 (where ELU is
        # CELU), a kink for any other alpha.
        output_range=(-1.0, INF),
    )

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"elu alpha must be positive, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, self.alpha)


@register_activation("selu")
class SELU(Activation):
    """scale * (x if x > 0 else alpha * (exp(x) - 1)), alpha ~ 1.6733, scale ~ 1.0507.

    Klambauer et al. 2017, "Self-normalizing neural networks"; pair with lecun_normal.
    """

    properties = ActProperties(
        formula="scale * (x if x > 0 else alpha * (exp(x) - 1))", reference="Klambauer et al. 2017",
        output_range=(-1.0507009873554805 * 1.6732632423543772, INF), smooth=False,
    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.selu(x)


@register_activation("celu")
class CELU(Activation):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)). Barron 2017."""

    properties = ActProperties(
        formula="max(0, x) + min(0, alpha * (exp(x / alpha) - 1))", reference="Barron 2017",
        output_range=(-1.0, INF),
    )

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"celu alpha must be positive, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.celu(x, self.alpha)


@register_activation("gelu")
class GELU(Activation):
    """x * Phi(x), the exact erf form. Hendrycks & Gimpel 2016."""

    properties = ActProperties(
        formula="x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)))", reference="Hendrycks & Gimpel 2016",
        output_range=(-0.17, INF), monotonic=False,
    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


@register_activation("gelu_tanh")
class GELUTanh(Activation):
    """GELU's tanh approximation x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""

    properties = ActProperties(
        formula="x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))",
        reference="Hendrycks & Gimpel 2016", output_range=(-0.17, INF), monotonic=False,
    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


@register_activation("silu", aliases=("swish",))
class SiLU(Activation):
    """x * sigmoid(x). Elfwing et al. 2018 (SiLU); Ramachandran et al. 2017 (Swish)."""

    properties = ActProperties(
        formula="x * sigmoid(x)", reference="Elfwing et al. 2018; Ramachandran et al. 2017",
        output_range=(-0.28, INF), monotonic=False,
    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)


@register_activation("mish")
class Mish(Activation):
    """x * tanh(softplus(x)). Misra 2019.

    On CPU computed from one sigmoid by :class:`actlab.activations.kernels.MishFromSigmoid`
    (1.6x faster than PyTorch's fused kernel there, same memory: benchmarks/af_cost.py);
    elsewhere ``F.mish``."""

    properties = ActProperties(
        formula="x * tanh(softplus(x))", reference="Misra 2019", output_range=(-0.31, INF),
        monotonic=False,
    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kernels.mish(x)


@register_activation("sigmoid", aliases=("logistic",))
class Sigmoid(Activation):
    """1 / (1 + exp(-x))."""

    properties = ActProperties(formula="1 / (1 + exp(-x))", output_range=(0.0, 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


@register_activation("tanh")
class Tanh(Activation):
    """tanh(x); LeCun et al. 1998 ("Efficient BackProp") argue for its zero-centred output."""

    properties = ActProperties(
        formula="tanh(x)", reference="LeCun et al. 1998", output_range=(-1.0, 1.0),
        zero_centred=True,
    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


@register_activation("softplus")
class Softplus(Activation):
    """log(1 + exp(beta * x)) / beta, computed stably. Dugas et al. 2001."""

    properties = ActProperties(
        formula="log(1 + exp(beta * x)) / beta", reference="Dugas et al. 2001",
        output_range=(0.0, INF),
    )

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"softplus beta must be positive, got {beta}")
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # threshold=20 * beta-scaled: PyTorch returns x itself where exp would overflow.
        return F.softplus(x, beta=self.beta)


@register_activation("hardswish", aliases=("hard_swish",))
class Hardswish(Activation):
    """x * relu6(x + 3) / 6. Howard et al. 2019 (MobileNetV3)."""

    properties = ActProperties(
        formula="x * min(max(x + 3, 0), 6) / 6", reference="Howard et al. 2019",
        output_range=(-0.375, INF), monotonic=False, smooth=False,
    )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x)


@register_activation("identity", aliases=("linear", "none"))
class Identity(Activation):
    """f(x) = x: the linear control (a network of it is a linear model)."""

    properties = ActProperties(formula="x", zero_centred=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

