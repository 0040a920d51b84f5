"""The activation catalog: each AF's declared properties next to the numbers that decide
how it propagates signal at initialization, and its measured cost on this machine.

f'(0) is what autograd computes at 0 (for the rectifiers' kink: relu'(0) = 0, PyTorch's
convention); moments are over z ~ N(0, 1) by Gauss-Hermite quadrature (an even node
count for f', so that the kink carries no weight).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from actlab.activations import ACTIVATIONS, matched_gain, resolve_act, torch_gain
from actlab.activations.base import build_activation
from actlab.activations.gains import float64_function, gaussian_expectation
from actlab.theory.meanfield import DERIVATIVE_NODES, derivative


def af_properties(act: Any) -> dict[str, Any]:
    """One catalog row: formula, learnable parameters, range, monotonic, smooth, bounded,
    zero-centred, f(0), f'(0), E[f(z)], E[f(z)²], E[f'(z)²], matched and torch gains."""
    spec = resolve_act(act)
    props = ACTIVATIONS.entry(spec.name).factory.properties
    fn, grad = float64_function(spec), derivative(spec)
    zero = torch.zeros(1, dtype=torch.float64)
    try:
        torch_value = torch_gain(spec)
    except ValueError:
        torch_value = float("nan")
    low, high = props.output_range
    return {
        "act": spec.label if hasattr(spec, "label") else str(act),
        "formula": props.formula,
        "learnable": ", ".join(props.learnable) or "-",
        "range": f"[{low:g}, {high:g}]",
        "monotonic": props.monotonic, "smooth": props.smooth, "bounded": props.bounded,
        "zero_centred": props.zero_centred,
        "f(0)": _at_zero(fn), "f'(0)": float(grad(zero)),
        "E[f]": gaussian_expectation(fn),
        "E[f^2]": gaussian_expectation(lambda z: fn(z) ** 2),
        "E[f'^2]": gaussian_expectation(lambda z: grad(z) ** 2, nodes=DERIVATIVE_NODES),
        "matched_gain": matched_gain(spec), "torch_gain": torch_value,
    }


def _at_zero(fn: Any) -> float:
    with torch.no_grad():
        return float(fn(torch.zeros(1, dtype=torch.float64)))


def relative_cost(acts: Sequence[Any], size: tuple[int, ...] = (256, 64, 16, 16),
                  repeats: int = 20, reference: str = "relu") -> pd.Series:
    """Forward + backward seconds of each AF on a tensor of ``size`` (float32, CPU, this
    process's threads), divided by ``reference``'s: a measurement on this machine, the
    median of ``repeats`` after a warm-up."""
    def seconds(act: Any) -> float:
        module = build_activation(act, channels=size[1])
        x = torch.randn(size, requires_grad=True)
        times = []
        for step in range(repeats + 3):
            start = time.perf_counter()
            module(x).sum().backward()
            if step >= 3:
                times.append(time.perf_counter() - start)
            x.grad = None
        return sorted(times)[len(times) // 2]

    base = seconds(reference)
    return pd.Series({str(act): seconds(act) / base for act in acts}, name="cost_vs_relu")


def catalog(acts: Sequence[Any], measure_cost: bool = True) -> pd.DataFrame:
    """The catalog of ``acts`` (one row each), with the relative cost if asked."""
    frame = pd.DataFrame([af_properties(act) for act in acts])
    if measure_cost:
        frame["cost_vs_relu"] = relative_cost(acts).to_numpy()
    return frame
