"""Mean-field signal propagation in wide random networks (Poole et al. 2016, "Exponential
expressivity in deep neural networks through transient chaos"; Schoenholz et al. 2017,
"Deep Information Propagation"); docs/theory.md shows what actlab draws from it.

With weights W ~ N(0, sw²/fan_in) and biases b ~ N(0, sb²), the pre-activation variance
of layer l follows the variance map

    q_l = sw² · E_z[f(√q_{l-1} · z)²] + sb²,      z ~ N(0, 1),

which settles at a fixed point q*. Two nearby inputs grow apart or together at the rate

    χ₁ = sw² · E_z[f'(√q* · z)²]:

χ₁ < 1 is the ordered phase (signals and gradients vanish with depth), χ₁ > 1 the chaotic
one (they explode), and χ₁ = 1 the edge of chaos, where very deep networks still train.
Expectations use the Gauss-Hermite quadrature of ``actlab.activations.gains``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import torch
from scipy.optimize import brentq

from actlab.activations.base import ActSpec
from actlab.activations.gains import float64_function, gaussian_expectation

ActLike = str | Mapping[str, Any] | ActSpec


def derivative(act: ActLike) -> Callable[[torch.Tensor], torch.Tensor]:
    """f' of the activation (float64, by autograd; learnable ones at initial values)."""
    fn = float64_function(act)

    def grad(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x.detach().clone().requires_grad_(True)
            (dx,) = torch.autograd.grad(fn(x).sum(), x)
        return dx.detach()

    return grad


def variance_map(act: ActLike, q: float, sw: float, sb: float = 0.0) -> float:
    """One step of the variance map: sw² E[f(√q z)²] + sb²."""
    fn = float64_function(act)
    return sw ** 2 * gaussian_expectation(lambda z: fn(z) ** 2, std=math.sqrt(q)) + sb ** 2


#: q* above this counts as unbounded (the map of an unbounded AF above its gain grows for
#: ever); below :data:`Q_FLOOR` the signal has died out.
Q_CAP, Q_FLOOR = 1e8, 1e-12


def fixed_point(act: ActLike, sw: float, sb: float = 0.0, q0: float = 1.0) -> float:
    """q*, the fixed point the variance map reaches from ``q0``: the root of V(q) - q on
    the side the map moves to from ``q0``, bracketed by doubling (or halving) and found
    by Brent's method to 1e-12 relative. ``inf`` when V(q) > q up to :data:`Q_CAP` (an
    unbounded AF above its critical weight std: relu at sw >= sqrt 2 with a bias), 0 when
    V(q) < q down to :data:`Q_FLOOR` (the signal dies out: sb = 0 in the ordered phase).

    Solving V(q) = q, rather than iterating the map, is what makes q* exact near the
    edge of chaos, where the map contracts at a rate close to 1 (relu with a bias:
    q -> sw^2 q / 2 + sb^2, so q* = sb^2 / (1 - sw^2 / 2), and tanh at sb = 0, whose
    iterates approach 0 like 1/l): any number of iterations stops short of q*."""
    fn = float64_function(act)

    def excess(q: float) -> float:
        return sw ** 2 * gaussian_expectation(lambda z: fn(z) ** 2, std=math.sqrt(q)) \
            + sb ** 2 - q

    def settled(q: float, value: float) -> bool:  # V(q) = q up to rounding
        return abs(value) <= 1e-12 * q

    start = excess(q0)
    if settled(q0, start):
        return q0
    growing = start > 0
    near, far, value = q0, q0, start
    while (value > 0) == growing:  # step on until V(q) - q changes sign
        if settled(far, value):
            return far
        near, far = far, far * 2 if growing else far / 2
        if far > Q_CAP:
            return math.inf
        if far < Q_FLOOR:
            return 0.0
        value = excess(far)
    low, high = sorted((near, far))
    return brentq(excess, low, high, xtol=Q_FLOOR, rtol=1e-12)


def chi1(act: ActLike, sw: float, sb: float = 0.0, q: float | None = None) -> float:
    """χ₁ = sw² E[f'(√q* z)²] at the fixed point (or at a given q)."""
    q = fixed_point(act, sw, sb) if q is None else q
    if not math.isfinite(q):
        return math.inf
    grad = derivative(act)
    # f' of a rectifier jumps at 0: a panel edge of the expectation's rule.
    return sw ** 2 * gaussian_expectation(lambda z: grad(z) ** 2, std=math.sqrt(max(q, 0.0)))


def critical_sw(act: ActLike, sb: float = 0.0, low: float = 0.05, high: float = 6.0,
                xtol: float = 1e-10) -> float:
    """The weight std at the edge of chaos for bias std ``sb``: the root of χ₁(sw) = 1
    (NaN if χ₁ - 1 does not change sign in [low, high])."""
    def excess(sw: float) -> float:
        # log χ₁ is close to linear in log sw (exactly so for the rectifiers, where
        # χ₁ = sw² E[f'²] whatever q*), which brentq's interpolation finds in few steps.
        value = chi1(act, math.exp(sw), sb)
        return math.log(value) if 0 < value < math.inf else (40.0 if value > 0 else -40.0)

    a, b = excess(math.log(low)), excess(math.log(high))
    if a * b > 0:
        return math.nan
    return math.exp(brentq(excess, math.log(low), math.log(high), xtol=xtol))


def phase_diagram(act: ActLike, sbs: list[float] | None = None) -> pd.DataFrame:
    """The order/chaos boundary: critical sw for each bias std (the curve that separates
    the ordered phase, below it, from the chaotic one, above it)."""
    sbs = sbs if sbs is not None else [0.0, 0.05, 0.1, 0.2, 0.3, 0.5]
    rows = []
    for sb in sbs:
        sw = critical_sw(act, sb)
        rows.append({"sb": sb, "critical_sw": sw,
                     "q_star": fixed_point(act, sw, sb) if math.isfinite(sw) else math.nan})
    return pd.DataFrame(rows)
