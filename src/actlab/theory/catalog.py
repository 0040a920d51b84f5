"""The activation catalog: each AF's declared properties next to the numbers that decide
how it propagates signal at initialization, and its measured cost on this machine.

f'(0) is what autograd computes at 0 (for the rectifiers' kink: relu'(0) = 0, PyTorch's
convention); moments are over z ~ N(0, 1), by Gauss-Hermite quadrature for f and f² and
by the jump-safe grid rule of ``gaussian_expectation`` for f'².
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from actlab.activations import ACTIVATIONS, matched_gain, resolve_act, torch_gain
from actlab.activations.base import build_activation
from actlab.activations.gains import float64_function, gaussian_expectation
from actlab.paths import cache_root
from actlab.theory.meanfield import derivative


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
    declared = {"formula": props.formula, "range": props.range_label,
                "monotonic": props.monotonic, "smooth": props.smooth,
                "bounded": props.bounded, "zero_centred": props.zero_centred}
    if props.unknown:  # a plug-in that declares nothing: measure what can be measured
        declared = measured_properties(spec)
    learnable = props.learnable or tuple(
        name for name, _ in spec.build(4).named_parameters())
    return {
        "act": spec.label if hasattr(spec, "label") else str(act),
        "formula": declared["formula"],
        "learnable": ", ".join(learnable) or "-",
        "range": declared["range"],
        "monotonic": declared["monotonic"], "smooth": declared["smooth"],
        "bounded": declared["bounded"], "zero_centred": declared["zero_centred"],
        "f(0)": _at_zero(fn), "f'(0)": float(grad(zero)),
        "E[f]": gaussian_expectation(fn),
        "E[f^2]": gaussian_expectation(lambda z: fn(z) ** 2),
        "E[f'^2]": gaussian_expectation(lambda z: grad(z) ** 2),
        "matched_gain": matched_gain(spec), "torch_gain": torch_value,
    }


def measured_properties(spec: Any) -> dict[str, Any]:
    """The catalog's property columns of an activation that declares none (a plug-in or
    a formula), measured on grids in float64: the range over [-1e4, 1e4]; monotonic when
    f never decreases there; smooth when f' jumps by less than 0.05 between points 1e-3
    apart on [-10, 10]; bounded when |f| grows by less than 1% from [-100, 100] to
    [-1e4, 1e4]. Whether it is zero-centred is a matter of definition: '?'."""
    fn, grad = float64_function(spec), derivative(spec)
    wide = torch.linspace(-1e4, 1e4, 200_001, dtype=torch.float64)
    fine = torch.linspace(-10.0, 10.0, 20_001, dtype=torch.float64)
    with torch.no_grad():
        values, near = fn(wide), fn(torch.linspace(-100.0, 100.0, 20_001,
                                                   dtype=torch.float64))
        slopes = grad(fine)
    low, high = float(values.min()), float(values.max())
    scale = max(1.0, float(values.abs().max()))
    return {
        "formula": str(spec.kwargs.get("formula", spec.name)),
        "range": f"[{low:.3g}, {high:.3g}] (measured)",
        "monotonic": bool((values.diff() >= -1e-12 * scale).all()),
        "smooth": bool((slopes.diff().abs() < 0.05).all()),
        "bounded": float(values.abs().max()) <= 1.01 * float(near.abs().max()) + 1e-9,
        "zero_centred": "?",
    }


def _at_zero(fn: Any) -> float:
    with torch.no_grad():
        return float(fn(torch.zeros(1, dtype=torch.float64)))


def relative_cost(acts: Sequence[Any], size: tuple[int, ...] = (256, 64, 16, 16),
                  repeats: int = 25, reference: str = "relu") -> pd.Series:
    """Forward + backward seconds of each AF on a tensor of ``size`` (float32, CPU, this
    process's threads), divided by ``reference``'s: a measurement on this machine.

    The activations are timed in interleaved rounds (one call of each per round, after
    warm-up rounds), so a slow phase of the machine hits every activation alike, and
    each one's fastest round is kept: on a shared 2-core machine the median moved by up
    to 2x between repeats, the minimum by about 10%."""
    names = list(dict.fromkeys([reference, *map(str, acts)]))
    modules = {name: build_activation(name, channels=size[1]) for name in names}
    x = torch.randn(size, requires_grad=True)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats + 3):
        for name, module in modules.items():
            start = time.perf_counter()
            module(x).sum().backward()
            elapsed = time.perf_counter() - start
            x.grad = None
            if round_ >= 3:
                times[name].append(elapsed)
    best = {name: min(values) for name, values in times.items()}
    return pd.Series({str(act): best[str(act)] / best[reference] for act in acts},
                     name="cost_vs_relu")


def cached_relative_cost(acts: Sequence[Any]) -> pd.Series:
    """``relative_cost`` of ``acts``, measured once per machine, torch version and thread
    count and kept in ``$ACTLAB_CACHE/af-cost.json``: the measurement takes about two
    seconds per activation, which every report would otherwise pay again; the missing
    activations are measured together with ReLU, so every ratio comes from one run."""
    path = cache_root() / "af-cost.json"
    key = f"{platform.node()}|{platform.processor()}|torch {torch.__version__}|" \
          f"{torch.get_num_threads()} threads"
    try:
        cache = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):  # a damaged cache is measured again, never fatal
        cache = {}
    known = cache.get(key, {})
    missing = [str(act) for act in dict.fromkeys(map(str, acts)) if str(act) not in known]
    if missing:
        known.update(relative_cost(missing).to_dict())
        cache[key] = known
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(cache, indent=1, sort_keys=True))
        partial.replace(path)  # atomic: a concurrent report reads the old or the new file
    return pd.Series({str(act): known[str(act)] for act in acts}, name="cost_vs_relu")


def catalog(acts: Sequence[Any], measure_cost: bool = True) -> pd.DataFrame:
    """The catalog of ``acts`` (one row each), with the relative cost if asked (measured
    on this machine, or taken from the cache of an earlier measurement)."""
    frame = pd.DataFrame([af_properties(act) for act in acts])
    if measure_cost:
        frame["cost_vs_relu"] = cached_relative_cost(acts).to_numpy()
    return frame
