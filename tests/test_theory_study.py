"""Theory for a study's own choices (actlab.theory.study) and the expectations under it:
the jump-safe, wide-Gaussian quadrature, the accelerated fixed point, χ₁ at the σw each
initializer draws, signal propagation through zoo models at init, and learnable
activations rebuilt from stored values."""

from __future__ import annotations

import itertools
import math
import warnings

import pandas as pd
import pytest
import torch
from scipy.integrate import IntegrationWarning, quad

from actlab.activations import ACTIVATIONS, example_act
from actlab.activations.base import build_activation
from actlab.activations.gains import float64_function, gaussian_expectation
from actlab.models import MODELS, build_model
from actlab.theory import chi1, derivative, fixed_point
from actlab.theory.study import (
    chi1_table,
    effective_sigma_w,
    learned_functions,
    learned_module,
    model_propagation,
    phase_of,
    propagation_summary,
    site_function,
)


def adaptive(fn, std: float) -> float:
    """E[fn(std z)] by scipy's adaptive quadrature, split at the kinks."""
    def integrand(u: float) -> float:
        value = float(fn(torch.tensor([u], dtype=torch.float64))[0])
        return value * math.exp(-0.5 * (u / std) ** 2) / (std * math.sqrt(2 * math.pi))

    wide = [sign * 10.0 * 2 ** k for k in range(40) for sign in (-1, 1)]  # bends fade out
    points = sorted({-10 * std, 10 * std, *(p for p in (-3.0, 0.0, 3.0, *wide)
                                            if abs(p) < 10 * std)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        return sum(quad(integrand, a, b, limit=500, epsrel=1e-11, epsabs=0)[0]
                   for a, b in itertools.pairwise(points))


@pytest.mark.parametrize("act", ["relu", "selu", "tanh", "hardswish", "gelu"])
@pytest.mark.parametrize("std", [1e-3, 1.0, 15.2, 1e3])
def test_derivative_moments_match_adaptive_quadrature(act: str, std: float) -> None:
    grad = derivative(act)
    value = gaussian_expectation(lambda z: grad(z) ** 2, std=std)
    assert value == pytest.approx(adaptive(lambda z: grad(z) ** 2, std), rel=1e-8)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "mish", "softplus"])
def test_wide_gaussians_resolve_the_bend(act: str) -> None:
    """Gauss-Hermite nodes step over tanh's bend at q = 232 (12x too small for f'²)."""
    fn = float64_function(act)
    value = gaussian_expectation(lambda z: fn(z) ** 2, std=math.sqrt(232.0))
    assert value == pytest.approx(adaptive(lambda z: fn(z) ** 2, math.sqrt(232.0)), rel=1e-4)


def test_fixed_point_is_exact_near_criticality_and_never_runs_backwards() -> None:
    # relu with a bias: q -> sw² q / 2 + sb², q* = sb² / (1 - sw² / 2), contracting at
    # rate sw² / 2, as slowly as one likes near sw = sqrt 2: q* is solved for, not iterated.
    assert fixed_point("relu", 1.4, 0.1) == pytest.approx(0.01 / (1 - 1.96 / 2), rel=1e-9)
    sw = math.sqrt(2 * (1 - 1e-6))
    assert fixed_point("relu", sw, 0.05) == pytest.approx(0.0025 / 1e-6, rel=1e-6)
    assert fixed_point("relu", math.sqrt(2 * (1 + 1e-6)), 0.05) == math.inf
    # growth is not extrapolated back to the unstable fixed point q = 0
    assert fixed_point("relu", 1.6) == math.inf
    assert fixed_point("relu", 1.3) < 1e-6  # ordered: the signal dies out


def test_tanh_with_n01_weights_is_deeply_chaotic() -> None:
    sw = 16.0  # N(0, 1) weights with fan_in 256
    q = fixed_point("tanh", sw)
    grad = derivative("tanh")
    expected = sw ** 2 * adaptive(lambda z: grad(z) ** 2, math.sqrt(q))
    assert chi1("tanh", sw) == pytest.approx(expected, rel=1e-4)
    assert chi1("tanh", sw) > 5


def test_initializers_place_activations_in_phases() -> None:
    sw, sb = effective_sigma_w("he_normal", "relu", width=512)
    assert sw == pytest.approx(math.sqrt(2), rel=0.01)
    assert sb == 0
    assert effective_sigma_w("normal", "relu", width=256)[0] == pytest.approx(16, rel=0.01)
    assert effective_sigma_w("xavier_normal(gain=1.0)", "relu")[0] == pytest.approx(1, rel=0.01)
    default_sw, default_sb = effective_sigma_w("default", "relu", width=256)
    assert default_sw == pytest.approx(1 / math.sqrt(3), rel=0.02)  # kaiming_uniform(a=√5)
    assert 0 < default_sb < 0.1
    table = chi1_table(["relu", "tanh"], ["he_normal", "xavier_normal(gain=1.0)", "normal"])
    phase = table.set_index(["act", "init"])["phase"]
    assert phase["relu", "he_normal"] == "critical"
    assert phase["relu", "xavier_normal(gain=1.0)"] == "ordered"  # χ₁ = 1/2
    assert phase["tanh", "xavier_normal(gain=1.0)"] == "critical"
    assert phase["tanh", "normal"] == "chaotic"
    assert phase["relu", "normal"] == "chaotic"
    fixup = chi1_table(["relu"], ["fixup"])  # Fixup is bound to its residual architecture
    assert fixup["phase"].iloc[0] == "n/a: needs its own architecture"
    assert (phase_of(0.5), phase_of(1.02), phase_of(math.inf)) == (
        "ordered", "critical", "chaotic")


def test_propagation_through_a_zoo_model() -> None:
    shape, classes = (1, 28, 28), 10
    he = model_propagation("deep_cnn", "relu", "he_normal", shape, classes,
                           {"depth": 12, "batchnorm": False})
    model = build_model("deep_cnn", "relu", 10, 1, 28, depth=12, batchnorm=False)
    layers = [name for name, m in model.named_modules()  # every conv and linear, in order
              if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert list(he["name"]) == layers
    assert list(he["layer"]) == list(range(1, len(layers) + 1))
    assert he["kind"].iloc[0] == "conv"
    assert he["kind"].iloc[-1] == "linear"
    assert propagation_summary(he)["escape_layer"] is None
    exploding = model_propagation("deep_cnn", "relu", "normal", shape, classes,
                                  {"depth": 12, "batchnorm": False})
    summary = propagation_summary(exploding)
    assert summary["escape_layer"] is not None
    assert summary["escape_layer"] <= 3
    assert summary["variance_last_over_first"] > 1e6
    # a residual net with BatchNorm (option-A shortcuts): 19 convolutions + the classifier
    normed = model_propagation("resnet20", "relu", "he_normal", (3, 32, 32), 10)
    assert len(normed) == 20
    assert (normed["grad_norm"] > 0).all()


def learnable() -> list[str]:
    names = [name for name in ACTIVATIONS if not ACTIVATIONS.get(name).example
             and build_activation(name, channels=4).tracked_values()]
    return [*names, "prelu(per_channel=True)", "tact(per_channel=True)"]


@pytest.mark.parametrize("act", learnable())
def test_learnable_sites_rebuild_from_stored_values(act: str) -> None:
    torch.manual_seed(0)
    site = build_activation(act, channels=4)
    with torch.no_grad():
        for param in site.parameters():
            param.add_(0.3 * torch.rand_like(param))
    rebuilt = learned_module(act, site.tracked_values())
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    f, df = site_function(rebuilt, x)
    grid = x.view(-1, 1).expand(-1, 4).contiguous().requires_grad_(True)
    reference = site.double()(grid)
    (dreference,) = torch.autograd.grad(reference.sum(), grid)
    assert torch.allclose(f, reference.mean(dim=1).detach(), atol=1e-12)
    assert torch.allclose(df, dreference.mean(dim=1), atol=1e-12)


def test_missing_values_are_named() -> None:
    with pytest.raises(ValueError, match="no stored value for parameter 'beta'"):
        learned_module("tact", {"alpha": 0.5})


def test_learned_functions_average_seeds_per_site() -> None:
    rows = [{"run_id": run, "act": "prelu", "epoch": epoch, "site": site, "name": "weight",
             "value": value}
            for run, offset in (("a", 0.0), ("b", 0.2))
            for epoch, value in ((0, 0.25), (3, 0.5 + offset))
            for site in ("features.1", "classifier.1")]
    curves = learned_functions(pd.DataFrame(rows), torch.tensor([-2.0, 1.0],
                                                                  dtype=torch.float64))
    learned = curves[(curves["stage"] == "learned") & (curves["x"] == -2.0)]
    assert learned["f"].tolist() == pytest.approx([-1.2, -1.2])  # slope 0.6 = mean(0.5, 0.7)
    initial = curves[(curves["stage"] == "initial") & (curves["x"] == -2.0)]
    assert initial["f"].tolist() == pytest.approx([-0.5, -0.5])
    assert list(dict.fromkeys(curves["site"])) == ["features.1", "classifier.1"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_propagation_through_every_zoo_model(name: str) -> None:
    """The report's theory section runs this for each task's model: every model must
    give one finite row per conv and linear layer (at a test size), for a learnable
    per-site activation too."""
    from test_models import SIZES, SMALL

    channels, size = SIZES[name][0]
    init = "fixup" if MODELS.entry(name).meta.get("fixup") else "he_normal"
    frame = model_propagation(name, "tact", init, (channels, size, size), 10, SMALL.get(name),
                              batch=2)
    assert len(frame) >= 2
    assert list(frame["layer"]) == list(range(1, len(frame) + 1))
    assert (frame["grad_norm"] >= 0).all()
    assert frame["pre_variance"].notna().all()


def test_the_catalog_describes_every_activation() -> None:
    """The catalog rows of the report's theory section, for every registered activation
    (the cost column, a timing, is tested in tests/test_theory.py)."""
    from actlab.theory.catalog import catalog

    acts = [example_act(name) for name in ACTIVATIONS]
    rows = catalog(acts, measure_cost=False)
    assert list(rows["act"]) == [spec.label for spec in acts]
    numeric = rows[["f(0)", "f'(0)", "E[f]", "E[f^2]", "E[f'^2]", "matched_gain"]]
    assert numeric.notna().all().all()
    assert (rows["matched_gain"] > 0).all()
