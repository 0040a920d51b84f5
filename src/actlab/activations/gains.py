"""Initialization gains matched to an activation.

``torch.nn.init.calculate_gain`` knows only a handful of nonlinearities. For any
activation actlab computes the variance-preserving gain numerically,

    g = 1 / sqrt(E[f(z)^2]),  z ~ N(0, 1),

so that a layer with weights of variance g^2 / fan_in keeps the second moment of its
pre-activations at 1 (He et al. 2015, eq. 10, generalised; relu gives sqrt(2)). The
expectation uses Gauss-Hermite quadrature (probabilists' weights), which agrees with
adaptive quadrature to about 1e-5 for the kinked rectifiers at 201 nodes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from numpy.polynomial.hermite_e import hermegauss

from actlab.activations.base import ActSpec, resolve_act

QUADRATURE_NODES = 201


@lru_cache(maxsize=4)
def _nodes(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, w = hermegauss(n)
    return torch.from_numpy(x), torch.from_numpy(w / math.sqrt(2.0 * math.pi))


#: Above this std, expectations are taken on a grid in u = mean + std·z (see below).
WIDE_STD = 2.0


def gaussian_expectation(
    fn: Callable[[torch.Tensor], torch.Tensor], std: float = 1.0, mean: float = 0.0,
    nodes: int = QUADRATURE_NODES, smooth: bool = True,
) -> float:
    """E[fn(mean + std * z)] for z ~ N(0, 1), in float64.

    Gauss-Hermite quadrature where it is accurate: a continuous integrand (``smooth``,
    e.g. f²) and a Gaussian no wider than :data:`WIDE_STD`. Otherwise the midpoint rule
    on a grid in u = mean + std·z. A jump (f'² of a rectifier) costs Gauss-Hermite up to
    about 1% (SELU's E[f'²] came out 0.5% low at std 1, 1.1% at std 1.9); for a wide
    Gaussian its nodes, about 0.15 std apart near the centre, step over the few units
    around 0 where activations bend (E[tanh'(√q z)²] at q = 232 came out 12x too
    small). The grid steps 0.01 std in z (so any std is resolved) or, when wider, 0.01
    in u where activations bend (|u| <= 10) and geometrically out to 10 std; kinks lie
    on grid edges. Against adaptive quadrature it agrees to 5e-5 for f² and f'² of the
    zoo's activations, std 1e-4..1e4.
    """
    if smooth and std <= WIDE_STD:
        x, w = _nodes(nodes)
        with torch.no_grad():
            values = fn(mean + std * x)
        return float((w * values).sum())
    mids, weights = _grid(max(float(std), 1e-12), float(mean))
    with torch.no_grad():
        values = fn(mids)
    return float((values * weights).sum())


@lru_cache(maxsize=1)
def _inner_edges() -> np.ndarray:
    return np.linspace(-10.0, 10.0, 2001)


def _grid(std: float, mean: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Midpoints of a grid in u and their weights (N(mean, std²) density x width), for
    :func:`gaussian_expectation`: for std <= 1, mean + std·z on z in [-10, 10] step
    0.01; wider, u in [-10, 10] step 0.01 (where activations bend) plus geometric tails
    out to 10 std. 0 and ±3 (the kinks of the rectifiers and hard activations) are grid
    edges, never midpoints, so autograd's convention at a kink carries no weight."""
    if std <= 1.0:
        edges = mean + std * _inner_edges()
    else:
        tail = np.geomspace(10.0, abs(mean) + 10.0 * std, 401)[1:]
        edges = np.concatenate([-tail[::-1], _inner_edges(), tail])
    mids = 0.5 * (edges[1:] + edges[:-1])
    density = np.exp(-0.5 * ((mids - mean) / std) ** 2) / (std * math.sqrt(2.0 * math.pi))
    return torch.from_numpy(mids), torch.from_numpy(density * np.diff(edges))


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


@lru_cache(maxsize=256)
def _second_moment(spec: ActSpec) -> float:
    return gaussian_expectation(lambda z: float64_function(spec)(z) ** 2)


def second_moment(act: str | Mapping[str, Any] | ActSpec) -> float:
    """E[f(z)^2] for z ~ N(0, 1)."""
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

