import itertools
import math
import warnings

import pytest
import torch
from scipy.integrate import IntegrationWarning, quad

from actlab.activations import ACTIVATIONS, example_act, matched_gain, second_moment, torch_gain
from actlab.activations.gains import KINKS, float64_function, gain_for, gaussian_expectation
from actlab.theory.meanfield import derivative

# The matched gain g = 1 / sqrt(E[f(z)^2]), z ~ N(0, 1) (docs/theory.md).
REFERENCE_GAINS = {"relu": 1.4142, "tanh": 1.5925, "sigmoid": 1.8462, "elu": 1.2452,
               "selu": 1.0000, "gelu": 1.5335, "silu": 1.6765, "mish": 1.4868,
               "softplus": 1.0419, "hardswish": 1.7367}


@pytest.mark.parametrize(("act", "expected"), REFERENCE_GAINS.items())
def test_matched_gain_equals_guide_table(act: str, expected: float) -> None:
    assert matched_gain(act) == pytest.approx(expected, abs=1e-3)


def test_second_moment_of_relu_is_one_half() -> None:
    assert second_moment("relu") == pytest.approx(0.5, abs=1e-6)


def test_matched_gain_agrees_with_monte_carlo_for_options() -> None:
    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    slope = 0.3
    f = torch.where(z > 0, z, slope * z)
    assert matched_gain(f"leaky_relu(slope={slope})") == pytest.approx(
        1 / f.pow(2).mean().sqrt().item(), rel=2e-3)


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "selu", "identity"])
def test_torch_gain_is_pytorchs_table(act: str) -> None:
    name = "linear" if act == "identity" else act
    assert torch_gain(act) == torch.nn.init.calculate_gain(name)


def test_torch_gain_for_leaky_relu_uses_its_slope() -> None:
    assert torch_gain("leaky_relu(slope=0.2)") == pytest.approx(math.sqrt(2 / (1 + 0.04)))


def test_torch_gain_fails_clearly_where_pytorch_has_none() -> None:
    with pytest.raises(ValueError, match=r"no gain for activation 'mish'.*gain: matched"):
        torch_gain("mish")


def test_gain_modes() -> None:
    assert gain_for("relu", 0.5) == 0.5
    assert gain_for("tanh", "torch") == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="unknown gain mode"):
        gain_for("relu", "magic")


def _adaptive_reference(fn, std: float) -> float:
    """E[fn(std z)] by scipy's adaptive quadrature in u = std z, split at the kinks and
    over the bend region: an integrator actlab does not use."""
    def integrand(u: float) -> float:
        value = float(fn(torch.tensor([u], dtype=torch.float64))[0].detach())
        return value * math.exp(-0.5 * (u / std) ** 2) / (std * math.sqrt(2 * math.pi))

    span = 12 * std
    wide = [sign * 10.0 * 2 ** k for k in range(40) for sign in (-1, 1)]  # bends fade out
    points = sorted({-span, span, *(k for k in (*KINKS, *wide) if abs(k) < span)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        return sum(quad(integrand, a, b, limit=200, epsrel=1e-13, epsabs=0)[0]
                   for a, b in itertools.pairwise(points))


@pytest.mark.parametrize("act", ACTIVATIONS.list())
def test_expectations_are_exact_for_every_activation(act: str) -> None:
    """E[f²] (the matched gain) and E[f'²] (chi1) to 2e-12 relative, at the unit Gaussian
    and at a very wide one (mean-field q* = 1e8, where a rule's nodes step over the
    bends; tests/test_theory_study.py checks narrow and middle widths)."""
    spec = example_act(act)
    fn, grad = float64_function(spec), derivative(spec)
    for std in (1.0, 1e4):
        for moment in (lambda z: fn(z) ** 2, lambda z: grad(z) ** 2):
            expected = _adaptive_reference(moment, std)
            value = gaussian_expectation(moment, std=std)
            assert value == pytest.approx(expected, rel=2e-12, abs=1e-300), (std, value)


@pytest.mark.parametrize("act", ["tact", "mtact"])
def test_the_gain_of_per_site_draws_is_their_mean(act: str) -> None:
    """TAct draws alpha, beta ~ U(0, 0.5) per site: its matched gain keeps the mean second
    moment over that distribution (a 20 x 20 midpoint grid here), not that of one draw
    (the seed-0 one, which every run used before)."""
    mids = [(i + 0.5) / 20 * 0.5 for i in range(20)]
    sites = [float64_function({"name": act, "alpha": a, "beta": b}) for a in mids for b in mids]
    moments = [gaussian_expectation(lambda z, f=f: f(z) ** 2) for f in sites]
    expected = 1 / math.sqrt(sum(moments) / len(moments))
    assert matched_gain(act) == pytest.approx(expected, rel=1e-4)
    seed_zero = 1 / math.sqrt(gaussian_expectation(lambda z: float64_function(act)(z) ** 2))
    assert abs(seed_zero / expected - 1) > 1e-3  # the old answer was another number
