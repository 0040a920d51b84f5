"""Every registered activation against an independent float64 (NumPy/SciPy) formula."""

import math

import numpy as np
import pytest
import torch
from scipy.special import erf, expit

from actlab.activations import ACTIVATIONS, build_activation, resolve_act
from actlab.components import ComponentSpecError
from actlab.registry import UnknownNameError

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


REFERENCES = {
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "prelu": lambda x: np.where(x > 0, x, 0.25 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "celu": lambda x: np.maximum(x, 0) + np.minimum(0, np.expm1(np.minimum(x, 0.0))),
    "gelu": lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "silu": lambda x: x * expit(x),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "sigmoid": expit,
    "tanh": np.tanh,
    "softplus": _softplus,
    "hardswish": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "identity": lambda x: x,
}
GRID = np.concatenate([np.linspace(-8.0, 8.0, 1601), [-1e4, -30.0, 30.0, 1e4]])


def test_every_registered_activation_has_a_reference() -> None:
    assert set(ACTIVATIONS) == set(REFERENCES)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_value_matches_float64_reference(name: str) -> None:
    module = build_activation(name, channels=4).double()
    x = torch.from_numpy(GRID)
    out = module(x).detach().numpy()
    with np.errstate(over="ignore"):
        expected = REFERENCES[name](GRID)
    assert np.all(np.isfinite(out)), f"{name} is not finite on the grid"
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_float32_close_to_reference_and_dtype_preserved(name: str) -> None:
    module = build_activation(name)
    x = torch.from_numpy(GRID).float()
    out = module(x)
    assert out.dtype == torch.float32
    assert out.shape == x.shape
    with np.errstate(over="ignore"):
        expected = REFERENCES[name](GRID)
    np.testing.assert_allclose(out.detach().double().numpy(), expected, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_gradients_pass_gradcheck(name: str) -> None:
    x = torch.randn(64, dtype=torch.float64) * 3
    # Stay away from the kinks of the piecewise functions (0 and +-3 for hardswish).
    x = x[(x.abs() > 1e-2) & ((x.abs() - 3).abs() > 1e-2)].requires_grad_()
    module = build_activation(name).double()
    assert torch.autograd.gradcheck(module, (x,))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_works_on_feature_maps(name: str) -> None:
    module = build_activation(name, channels=3)
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    module(x).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()


def test_options_labels_and_defaults() -> None:
    assert resolve_act("leaky_relu").label == "leaky_relu"
    assert resolve_act("leaky_relu(slope=0.01)").label == "leaky_relu"
    assert resolve_act("LReLU(slope=0.3)").label == "leaky_relu(slope=0.3)"
    assert resolve_act({"name": "leaky_relu", "slope": 0.3}) == resolve_act(
        "leaky_relu(slope=0.3)")
    assert resolve_act("swish").label == "silu"
    out = build_activation("leaky_relu(slope=0.3)")(torch.tensor([-1.0]))
    assert out.item() == pytest.approx(-0.3)


def test_option_errors_are_clear() -> None:
    with pytest.raises(ComponentSpecError, match="has no option 'slop'; its options are: slope"):
        resolve_act("leaky_relu(slop=0.3)")
    with pytest.raises(ComponentSpecError, match="cannot parse"):
        resolve_act("leaky_relu(0.3)")
    with pytest.raises(UnknownNameError, match="Did you mean"):
        resolve_act("mishh")
    with pytest.raises(ValueError, match="slope must be in"):
        build_activation("leaky_relu(slope=2.0)")


def test_prelu_is_learnable_per_site_or_per_channel() -> None:
    single = build_activation("prelu", channels=8)
    assert single.weight.shape == (1,)
    assert single.weight.item() == 0.25
    per_channel = build_activation("prelu(per_channel=True)", channels=8)
    assert per_channel.weight.shape == (8,)
    x = torch.randn(4, 8, 3, 3)
    per_channel(x).sum().backward()
    assert per_channel.weight.grad is not None
    with pytest.raises(ValueError, match="channel count"):
        build_activation("prelu(per_channel=True)")
