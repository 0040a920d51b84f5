"""SERF, f(x) = x * erf(ln(1 + e^x)): Nag, Bhattacharyya, Kumar & Ray 2023."""

import torch
import torch.nn.functional as F

from actlab import ActProperties, Activation, register_activation


@register_activation("serf")
class SERF(Activation):
    properties = ActProperties(formula="x * erf(ln(1 + exp(x)))", reference="Nag et al. 2023",
                               output_range=(-0.3484, float("inf")), monotonic=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.erf(F.softplus(x))  # softplus(x) = ln(1 + e^x), stable for large x
