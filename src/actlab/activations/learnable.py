"""Activations with learnable parameters.

Parameters are float32 ``nn.Parameter`` attributes with stable names, so the engine can
record them per site and per epoch (``features.3.act.weight`` and so on).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from actlab.activations.base import Activation, ActProperties, register_activation


def per_site_parameter(value: float, per_channel: bool, channels: int | None, name: str
                       ) -> nn.Parameter:
    """A float32 parameter: one scalar per site, or one value per channel."""
    if not per_channel:
        shape: tuple[int, ...] = (1,)
    elif channels is None:
        raise ValueError(f"{name}(per_channel=True) needs the channel count of its site; "
                         "this model does not provide it")
    else:
        shape = (channels,)
    return nn.Parameter(torch.full(shape, float(value), dtype=torch.float32))


@register_activation("prelu")
class PReLU(Activation):
    """max(0, x) + a * min(0, x) with learnable a (start 0.25).

    He, Zhang, Ren & Sun 2015, "Delving deep into rectifiers". ``per_channel=False``
    (default) learns one a per site, ``per_channel=True`` one per channel.
    """

    properties = ActProperties(
        formula="max(0, x) + a * min(0, x)", reference="He et al. 2015", smooth=False,
        learnable=("weight",),
    )

    def __init__(self, init: float = 0.25, per_channel: bool = False,
                 channels: int | None = None) -> None:
        super().__init__()
        self.weight = per_site_parameter(init, per_channel, channels, "prelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.weight.to(x.dtype))
