"""Theory for a study's own choices: signal propagation at initialization through the
study's models, the mean-field χ₁ its initializers put each activation at, and the
functions its learnable activations ended up as.

These complement the plain-network analysis of :mod:`actlab.theory.propagation`: a
ResNet with BatchNorm keeps its pre-activations at unit scale whatever the initializer,
so what differs between initializers there is the gradient, which the per-layer gradient
norm shows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from actlab.activations.base import Activation, resolve_act
from actlab.inits import apply_init
from actlab.models import build_model
from actlab.theory.meanfield import chi1, fixed_point, variance_map

_INDEXED = re.compile(r"^(?P<name>\w+)\[(?P<index>\d+)\]$")


def model_propagation(model: str, act: Any, init: Any, input_shape: Sequence[int],
                      num_classes: int, model_options: Mapping[str, Any] | None = None,
                      gain: str | float = "matched", batch: int = 8, seed: int = 0
                      ) -> pd.DataFrame:
    """Per convolution / linear layer of a zoo model at init, in the order the forward pass
    reaches them: the variance of the layer's output (the pre-activation, before any
    normalization) and the norm of its weight gradient, for a batch of N(0, 1) inputs of
    ``input_shape`` (C, H, W) and random labels under cross-entropy, in float64 and
    train mode (BatchNorm on batch statistics, as in the first step)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_model(model, act=act, num_classes=num_classes,
                          in_channels=int(input_shape[0]), image_size=int(input_shape[-1]),
                          **dict(model_options or {})).double()
        inputs = torch.randn((batch, *map(int, input_shape)), generator=generator,
                             dtype=torch.float64)
        apply_init(net, init, act, gain=gain, batch=inputs)
    labels = torch.randint(num_classes, (batch,), generator=generator)
    outputs: list[tuple[str, nn.Module, float]] = []
    hooks = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            hooks.append(module.register_forward_hook(
                lambda mod, _inputs, out, name=name: outputs.append(
                    (name, mod, _finite_or_inf(out.detach().var().item())))))
    net.train()
    try:
        logits = net(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    loss = F.cross_entropy(logits, labels)
    if torch.isfinite(loss):
        loss.backward()
    rows = []
    for layer, (name, module, variance) in enumerate(outputs, start=1):
        grad = module.weight.grad
        rows.append({"layer": layer, "name": name,
                     "kind": "conv" if isinstance(module, nn.Conv2d) else "linear",
                     "pre_variance": variance,
                     "grad_norm": _finite_or_inf(grad.norm().item()) if grad is not None
                     else math.inf})
    return pd.DataFrame(rows)


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def propagation_summary(frame: pd.DataFrame, low: float = 1e-3, high: float = 1e3
                        ) -> dict[str, Any]:
    """The numbers a per-layer propagation profile comes down to: the last layer's
    pre-activation variance relative to the first's, the spread of the weight-gradient
    norms (largest / smallest over layers), and the first layer whose variance leaves
    [low, high] (None if none does)."""
    variance, grads = frame["pre_variance"], frame["grad_norm"]
    escape = next((int(layer) for layer, v in zip(frame["layer"], variance, strict=True)
                   if not (low <= v <= high)), None)
    positive = grads[grads > 0]
    return {
        "layers": len(frame),
        "variance_last_over_first": _ratio(variance.iloc[-1], variance.iloc[0]),
        "grad_spread": _ratio(positive.max(), positive.min()) if len(positive) else math.inf,
        "escape_layer": escape,
    }


def _ratio(a: float, b: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return math.inf
    return a / b


def effective_sigma_w(init: Any, act: Any, width: int = 256, gain: str | float = "matched",
                      seed: int = 0) -> tuple[float, float]:
    """(σw, σb) that ``init`` gives a square Linear(width, width) layer in front of
    ``act``, measured on the drawn weights: σw² = fan_in · Var(W), σb = std of the bias.
    This is where the initializer puts the activation in the mean-field picture
    (He with ReLU: σw = √2; N(0, 1): σw = √width)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = nn.Sequential(nn.Linear(width, width), resolve_act(act).build(width)).double()
        apply_init(layer, init, act, gain=gain,
                   batch=torch.randn(512, width, dtype=torch.float64))
    weight, bias = layer[0].weight.detach(), layer[0].bias.detach()
    return math.sqrt(width * weight.var().item()), bias.std().item()


def chi1_table(acts: Sequence[Any], inits: Sequence[Any], width: int = 256,
               gain: str | float = "matched") -> pd.DataFrame:
    """χ₁ for each activation x initializer at the (σw, σb) the initializer draws for a
    width-``width`` layer: < 1 ordered (gradients vanish with depth), > 1 chaotic (they
    explode), 1 the edge of chaos; with the fixed point q*."""
    rows = []
    for init in inits:
        for act in acts:
            try:
                sw, sb = effective_sigma_w(init, act, width, gain)
            except ValueError:  # an initializer bound to its own architecture (fixup)
                rows.append({"init": str(init), "act": str(act), "sigma_w": math.nan,
                             "sigma_b": math.nan, "q_star": math.nan, "chi1": math.nan,
                             "phase": "n/a: needs its own architecture"})
                continue
            q = fixed_point(act, sw, sb)
            value = chi1(act, sw, sb, q=q)
            # A homogeneous map (relu: q -> sw² q / 2) has no finite nonzero fixed point
            # off the critical sw; where the iteration has not settled, q* is undefined
            # (χ₁ of such an AF does not depend on q).
            settled = math.isfinite(q) and abs(variance_map(act, q, sw, sb) - q) <= 1e-6 * max(
                1.0, q)
            rows.append({"init": str(init), "act": str(act), "sigma_w": sw, "sigma_b": sb,
                         "q_star": q if settled else math.nan, "chi1": value,
                         "phase": phase_of(value)})
    return pd.DataFrame(rows)


def phase_of(chi: float, tolerance: float = 0.05) -> str:
    """'ordered', 'critical' (within ``tolerance`` of 1) or 'chaotic'."""
    if not math.isfinite(chi):
        return "chaotic"
    if abs(chi - 1.0) <= tolerance:
        return "critical"
    return "ordered" if chi < 1.0 else "chaotic"


def learned_module(act: Any, values: Mapping[str, float]) -> Activation:
    """One activation site rebuilt at stored parameter values (as the engine records them:
    ``alpha`` for a per-site parameter, ``alpha[3]`` per channel), in float64. Derived
    values that are not parameters (a combination's normalized weights X, Y, Z) are
    ignored."""
    spec = resolve_act(act)
    indices = [int(m["index"]) for key in values if (m := _INDEXED.match(key))]
    module = spec.build(channels=max(indices) + 1 if indices else 1).double()
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name in values:
                param.fill_(float(values[name]))
                continue
            flat = [values.get(f"{name}[{i}]") for i in range(param.numel())]
            if any(v is None for v in flat):
                raise ValueError(f"no stored value for parameter {name!r} of {spec.label}; "
                                 f"stored: {', '.join(sorted(values))}")
            param.copy_(torch.tensor(flat, dtype=torch.float64).view_as(param))
    return module.eval()


def site_function(module: Activation, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and f'(x) of one rebuilt site on a 1-D grid; a per-channel site gives the mean
    over its channels (each channel sees the same x)."""
    channels = max((p.numel() for p in module.parameters()), default=1)
    grid = x.detach().clone().view(-1, 1).expand(-1, channels).contiguous().requires_grad_(True)
    y = module(grid)
    (dy,) = torch.autograd.grad(y.sum(), grid)
    return y.detach().mean(dim=1), dy.mean(dim=1)


def learned_functions(params: pd.DataFrame, x: torch.Tensor) -> pd.DataFrame:
    """f and f' of every learnable site at its first and last recorded epoch, from a
    study's parameter frame (one row per run, epoch, site, name, value), the values
    averaged over seeds: columns act, site, depth (site order), stage ('initial' or
    'learned'), x, f, df."""
    rows = []
    for act, data in params.groupby("act", sort=False):
        sites = list(dict.fromkeys(data["site"]))
        first = data[data["epoch"] == data.groupby("run_id")["epoch"].transform("min")]
        last = data[data["epoch"] == data.groupby("run_id")["epoch"].transform("max")]
        for stage, frame in (("initial", first), ("learned", last)):
            means = frame.groupby(["site", "name"], sort=False)["value"].mean()
            for depth, site in enumerate(sites):
                if site not in means.index.get_level_values(0):
                    continue
                module = learned_module(act, means.loc[site].to_dict())
                f, df = site_function(module, x)
                rows.append(pd.DataFrame({"act": act, "site": site, "depth": depth,
                                          "stage": stage, "x": x.numpy(), "f": f.numpy(),
                                          "df": df.numpy()}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["act", "site", "depth", "stage", "x", "f", "df"])
