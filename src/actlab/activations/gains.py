"""Initialization gains matched to an activation.

``torch.nn.init.calculate_gain`` knows only a handful of nonlinearities. For any
activation actlab computes the variance-preserving gain numerically,

    g = 1 / sqrt(E[f(z)^2]),  z ~ N(0, 1),

so that a layer with weights of variance g^2 / fan_in keeps the second moment of its
pre-activations at 1 (He et al. 2015, eq. 10, generalised; relu gives sqrt(2)). The
expectation (:func:`gaussian_expectation`) agrees with adaptive quadrature to 2e-12
relative for every activation of the zoo, kinked ones included.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from numpy.polynomial.legendre import leggauss

from actlab.activations.base import ACTIVATIONS, ActSpec, resolve_act

#: Where the zoo's activations break or bend (in u, the activation's input): the
#: rectifiers at 0, hard sigmoid and tanh at ±1, hardswish at ±3, relu6-like caps at ±6.
KINKS = (-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0)
#: Gauss-Legendre nodes per panel, panel width in z, and the z range (the Gaussian weight
#: beyond 12 std is below 1e-32).
PANEL_NODES, PANEL_WIDTH, Z_RANGE = 12, 0.25, 12.0


@lru_cache(maxsize=1)
def _legendre() -> tuple[np.ndarray, np.ndarray]:
    return leggauss(PANEL_NODES)


def gaussian_expectation(fn: Callable[[torch.Tensor], torch.Tensor], std: float = 1.0,
                         mean: float = 0.0) -> float:
    """E[fn(mean + std * z)] for z ~ N(0, 1), in float64.

    Composite Gauss-Legendre quadrature in z over [-12, 12], 12 nodes per panel, with
    panel edges every 0.25 in z, every 0.25 in u = mean + std·z where activations bend
    (|u| <= 10, which a wide Gaussian would otherwise step over) and geometrically
    beyond (where the bends fade out), and at the kinks of :data:`KINKS`. A
    piecewise-smooth integrand whose breaks lie on panel edges (f², f'² of every
    activation in the zoo at its default options) is then integrated to rounding:
    against scipy's adaptive quadrature, within 2e-12 relative at std 1 and 1e4
    (tests/test_gains.py). A break elsewhere (a learnable kink moved by training) costs
    accuracy only inside its one panel.
    """
    std = max(float(std), 1e-12)
    tails = np.geomspace(10.0, 1e6, 41)  # where the bends fade out (sigmoid' ~ e^-u)
    bends = (np.concatenate([-tails, np.linspace(-10.0, 10.0, 81), tails]) - mean) / std
    kinks = (np.asarray(KINKS) - mean) / std
    edges = np.concatenate([np.arange(-Z_RANGE, Z_RANGE + PANEL_WIDTH / 2, PANEL_WIDTH),
                            bends, kinks])
    edges = np.unique(edges[np.abs(edges) <= Z_RANGE])
    x, w = _legendre()
    half = np.diff(edges)[:, None] / 2
    z = (edges[:-1, None] + half + half * x).ravel()
    weights = (half * w).ravel() * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    with torch.no_grad():
        values = fn(torch.from_numpy(mean + std * z))
    return float((values * torch.from_numpy(weights)).sum())


def float64_function(act: str | Mapping[str, Any] | ActSpec) -> Callable[[torch.Tensor],
                                                                          torch.Tensor]:
    """The activation as a float64 function (learnable ones at their initial values;
    randomly initialized ones at the values drawn with seed 0)."""
    # Activations with random initial values (tact) draw them from torch's generator:
    # draw under a fixed seed, without disturbing the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = resolve_act(act).build(channels=1)
    return copy.deepcopy(module).to(torch.float64).eval()


#: Gauss-Legendre nodes per randomly drawn option (see :func:`second_moment`).
DRAW_NODES = 8


@lru_cache(maxsize=256)
def _second_moment(spec: ActSpec) -> float:
    cls = ACTIVATIONS.get(spec.name)
    drawn = {k: r for k, r in cls.random_init.items() if spec.kwargs.get(k) is None}
    if not drawn:
        return gaussian_expectation(lambda z: float64_function(spec)(z) ** 2)
    x, w = leggauss(DRAW_NODES)
    given = {k: v for k, v in spec.kwargs.items() if v is not None}
    total = 0.0
    for point in itertools.product(range(DRAW_NODES), repeat=len(drawn)):
        options = {name: low + (high - low) * (x[i] + 1) / 2
                   for (name, (low, high)), i in zip(drawn.items(), point, strict=True)}
        weight = math.prod(w[i] / 2 for i in point)
        fn = float64_function({"name": spec.name, **given, **options})
        total += weight * gaussian_expectation(lambda z, fn=fn: fn(z) ** 2)
    return total


def second_moment(act: str | Mapping[str, Any] | ActSpec) -> float:
    """E[f(z)^2] for z ~ N(0, 1). For an activation whose options are drawn per site
    (TAct's alpha, beta ~ U(0, 0.5)), its mean over that distribution (Gauss-Legendre in
    each option), so that the matched gain keeps the second moment of every site on
    average, not that of one draw."""
    return _second_moment(resolve_act(act))


def matched_gain(act: str | Mapping[str, Any] | ActSpec) -> float:
    """The variance-preserving gain 1 / sqrt(E[f(z)^2]) of any activation in the registry."""
    moment = second_moment(act)
    if not moment > 0:
        raise ValueError(f"activation {resolve_act(act).label} has E[f(z)^2] = {moment}; "
                         "no variance-preserving gain exists")
    return 1.0 / math.sqrt(moment)


def torch_gain(act: str | Mapping[str, Any] | ActSpec) -> float:
    """PyTorch's ``calculate_gain`` for the activations it knows; an error for the others."""
    spec = resolve_act(act)
    if spec.name == "leaky_relu":
        return torch.nn.init.calculate_gain("leaky_relu", spec.kwargs["slope"])
    known = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "selu": "selu",
             "identity": "linear"}
    if spec.name not in known:
        raise ValueError(
            f"torch.nn.init.calculate_gain has no gain for activation '{spec.label}'; "
            f"it knows {', '.join(sorted([*known, 'leaky_relu']))}. Use `gain: matched` "
            "for a numerically matched gain."
        )
    return torch.nn.init.calculate_gain(known[spec.name])


def gain_for(act: str | Mapping[str, Any] | ActSpec, mode: str | float) -> float:
    """The gain for ``act`` under a study's gain mode: 'matched', 'torch' or a number."""
    if isinstance(mode, (int, float)) and not isinstance(mode, bool):
        return float(mode)
    if mode == "matched":
        return matched_gain(act)
    if mode == "torch":
        return torch_gain(act)
    raise ValueError(f"unknown gain mode {mode!r}; choose 'matched', 'torch' or a number")

