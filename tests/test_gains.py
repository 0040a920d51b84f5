import math

import pytest
import torch

from actlab.activations import matched_gain, second_moment, torch_gain
from actlab.activations.gains import gain_for

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
