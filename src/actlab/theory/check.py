"""``actlab check activation``: what to know about an activation before training with it.

Each check is a numerical fact measured on this machine, not a declared property:

- finite: forward and backward finite for x in [-1e4, 1e4] (a coarse grid over the whole
  range and a fine one over [-10, 10]) in float32 and bfloat16;
- gradient: autograd against central finite differences in float64
  (``torch.autograd.gradcheck``), and the double backward (``gradgradcheck``), which
  gradient penalties and some optimizers need;
- values: f(0), f'(0), E[f(z)], E[f(z)²] for z ~ N(0, 1) and the matched gain
  1 / sqrt(E[f(z)²]) (He et al. 2015, eq. 10, generalised; actlab/activations/gains.py);
- transforms: ``torch.func.vmap`` (cohort training) gives the looped result, and
  ``torch.compile(fullgraph=True)`` traces it without a graph break;
- per channel: with ``per_channel=True`` (where the activation has that option) each
  parameter holds one value per channel and the forward broadcasts them;
- cost: forward + backward time relative to ReLU on a [256, 64, 16, 16] tensor on this
  machine's CPU (median of 5).

A check that fails says what went wrong (the first x where the output is NaN, the
gradcheck message); :func:`verdict` sums them up in a line.
"""

from __future__ import annotations

import copy
import inspect
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from actlab.activations import ACTIVATIONS, ActSpec, matched_gain, resolve_act
from actlab.activations.base import Activation
from actlab.activations.gains import gaussian_expectation


@dataclass(frozen=True)
class Check:
    """One finding: ``ok`` is True (passed), False (failed) or None (a value, no verdict)."""

    name: str
    ok: bool | None
    detail: str


def check_activation(act: str | dict[str, Any] | ActSpec, cost: bool = True) -> list[Check]:
    """Every check of the module docstring on ``act`` (built for 4 channels)."""
    spec = resolve_act(act)
    module = spec.build(4)
    checks = [_finite(module, torch.float32), _finite(module, torch.bfloat16),
              _gradcheck(module), _gradgradcheck(module)]
    checks += _values(spec, module)
    checks += [_vmap(module), _compiles(module), _per_channel(spec)]
    if cost:
        checks.append(_cost(module))
    return checks


def verdict(checks: list[Check]) -> str:
    """``ready: every check passed`` or ``not ready: 2 checks failed (finite float32, ...)``."""
    failed = [c.name for c in checks if c.ok is False]
    if not failed:
        return "ready: every check passed"
    return (f"not ready: {len(failed)} check{'s' if len(failed) != 1 else ''} failed "
            f"({', '.join(failed)})")


def _grid(dtype: torch.dtype) -> torch.Tensor:
    wide = torch.linspace(-1e4, 1e4, 20_001)
    fine = torch.linspace(-10.0, 10.0, 4_001)
    return torch.cat([wide, fine]).to(dtype).view(1, 1, -1).expand(1, 4, -1).contiguous()


def _first_bad(x: torch.Tensor, values: torch.Tensor) -> float:
    bad = ~torch.isfinite(values)
    return float(x[bad][0].float()) if bad.any() else math.nan


def _finite(module: Activation, dtype: torch.dtype) -> Check:
    name = f"finite {str(dtype).removeprefix('torch.')}"
    site = copy.deepcopy(module).to(dtype)
    x = _grid(dtype).requires_grad_(True)
    try:
        y = site(x)
        (grad,) = torch.autograd.grad(y.float().sum(), x)
    except Exception as exc:
        return Check(name, False, f"raises {type(exc).__name__}: {exc}")
    if not torch.isfinite(y).all():
        return Check(name, False, f"f(x) is not finite at x = {_first_bad(x.detach(), y):g}")
    if not torch.isfinite(grad).all():
        return Check(name, False, f"f'(x) is not finite at x = "
                                  f"{_first_bad(x.detach(), grad):g}")
    return Check(name, True, "forward and backward finite over [-1e4, 1e4]")


def _float64_inputs() -> torch.Tensor:
    # Away from 0 and the usual kinks (±1, ±3, ±6), where finite differences disagree
    # with any one-sided derivative.
    values = torch.tensor([-7.3, -4.1, -2.2, -1.6, -0.7, -0.3, 0.21, 0.55, 1.3, 2.4, 4.7, 8.2])
    return values.double().view(1, 1, -1).expand(1, 4, -1).contiguous().requires_grad_(True)


def _gradcheck(module: Activation) -> Check:
    site = copy.deepcopy(module).double()
    try:
        torch.autograd.gradcheck(site, (_float64_inputs(),), eps=1e-6, atol=1e-5, rtol=1e-4)
    except Exception as exc:
        return Check("gradient", False, _first_line(exc))
    return Check("gradient", True, "autograd agrees with finite differences (float64)")


def _gradgradcheck(module: Activation) -> Check:
    site = copy.deepcopy(module).double()
    try:
        torch.autograd.gradgradcheck(site, (_float64_inputs(),), eps=1e-6, atol=1e-5,
                                     rtol=1e-4)
    except Exception as exc:
        return Check("double backward", False, _first_line(exc))
    return Check("double backward", True, "second derivatives agree with finite differences")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _values(spec: ActSpec, module: Activation) -> list[Check]:
    site = copy.deepcopy(module).double()

    def f(x: torch.Tensor) -> torch.Tensor:
        shaped = x.reshape(1, 1, -1).expand(1, 4, -1)
        return site(shaped)[0, 0].reshape(x.shape)

    zero = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        f0 = f(zero)
        (d0,) = torch.autograd.grad(f0.sum(), zero)
    with torch.no_grad():
        mean = gaussian_expectation(lambda z: f(z))
        square = gaussian_expectation(lambda z: f(z) ** 2)
    checks = [Check("f(0)", None, f"{float(f0.detach()):.6g}"),
              Check("f'(0)", None, f"{float(d0):.6g}"),
              Check("E[f(z)]", None, f"{mean:.6g}"), Check("E[f(z)^2]", None, f"{square:.6g}")]
    try:
        gain = matched_gain(spec)
        checks.append(Check("matched gain", math.isfinite(gain) and gain > 0, f"{gain:.6g}"))
    except Exception as exc:
        checks.append(Check("matched gain", False, _first_line(exc)))
    return checks


def _vmap(module: Activation) -> Check:
    site = copy.deepcopy(module)
    x = torch.randn(3, 2, 4, 5, 5)
    try:
        batched = torch.func.vmap(site)(x)
    except Exception as exc:
        return Check("vmap", False, _first_line(exc))
    looped = torch.stack([site(member) for member in x])
    if not torch.allclose(batched, looped, atol=1e-6, rtol=1e-5):
        return Check("vmap", False, "torch.func.vmap gives other values than a loop")
    return Check("vmap", True, "torch.func.vmap matches a loop (cohort training works)")


def _compiles(module: Activation) -> Check:
    site = copy.deepcopy(module)
    x = torch.randn(2, 4, 5, 5)
    try:
        torch._dynamo.reset()
        compiled = torch.compile(site, fullgraph=True, backend="eager")
        same = torch.allclose(compiled(x), site(x), atol=1e-6)
    except Exception as exc:
        return Check("compile", False, _first_line(exc))
    finally:
        torch._dynamo.reset()
    if not same:
        return Check("compile", False, "the compiled module gives other values")
    return Check("compile", True, "torch.compile traces it as one graph")


def _per_channel(spec: ActSpec) -> Check:
    factory = ACTIVATIONS.get(spec.name)
    if "per_channel" not in inspect.signature(factory).parameters:
        return Check("per channel", None, "no per_channel option")
    try:
        site = resolve_act({**spec.kwargs, "name": spec.name, "per_channel": True}).build(4)
        shapes = {name: tuple(p.shape) for name, p in site.named_parameters()}
        out = site(torch.randn(2, 4, 3, 3))
    except Exception as exc:
        return Check("per channel", False, _first_line(exc))
    if not shapes:
        return Check("per channel", None, "no learnable parameters")
    wrong = {n: s for n, s in shapes.items() if s != (4,)}
    if wrong or out.shape != (2, 4, 3, 3):
        return Check("per channel", False, f"per_channel=True gives parameter shapes {wrong}")
    return Check("per channel", True, f"{len(shapes)} parameter(s), one value per channel")


def _cost(module: Activation) -> Check:
    x = torch.randn(256, 64, 16, 16, requires_grad=True)

    def seconds(function: Callable[[torch.Tensor], torch.Tensor]) -> float:
        times = []
        for _ in range(6):
            start = time.perf_counter()
            function(x).sum().backward()
            times.append(time.perf_counter() - start)
            x.grad = None
        return statistics.median(times[1:])  # the first is a warm-up

    site = copy.deepcopy(module)
    relu, own = seconds(F.relu), seconds(site)
    return Check("cost", None, f"{own / relu:.2f}x ReLU per forward + backward "
                               f"({own * 1e3:.1f} ms vs {relu * 1e3:.1f} ms, CPU)")
