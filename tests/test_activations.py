"""Every registered activation against an independent float64 (NumPy/SciPy) formula."""

import math

import numpy as np
import pytest
import torch
from scipy.special import erf, expit

from actlab.activations import ACTIVATIONS, build_activation, example_act, resolve_act
from actlab.components import ComponentSpecError
from actlab.registry import UnknownNameError

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _param(module, name: str) -> float:
    return module.get_parameter(name).item()


def _tact(x: np.ndarray, m, squared: bool) -> np.ndarray:
    alpha, beta = _param(m, "alpha"), _param(m, "beta")
    slope, sharpness = (alpha**2, 1 + beta**2) if squared else (alpha, 1 + beta)
    return (slope * x + 1 - slope) * expit(sharpness * x)


_FIXED = {
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
    "expr": lambda x: x * np.tanh(_softplus(x)),  # its example formula is Mish
    "sigmoid": expit,
    "tanh": np.tanh,
    "softplus": _softplus,
    "hardswish": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "identity": lambda x: x,
    # Learnable activations at their documented starting values:
    "swish_beta": lambda x: x * expit(x),
    "frelu": lambda x: np.maximum(x, 0.0),
    "pelu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "asigmoid": expit,
    "atanh": np.tanh,
    "arelu": lambda x: np.maximum(x, 0.0),
    # Chen et al. 2020 at alpha = 0.9 (a float32 parameter), beta = 2: slopes
    # 1 + sigmoid(2) and 0.9
    "attention_relu": lambda x: np.where(x >= 0, (1 + expit(2.0)) * x,
                                         float(np.float32(0.9)) * x),
    "combo_adaptive": lambda x: (np.tanh(x) + expit(x) + np.maximum(x, 0.0)) / 3,
    "combo_fixed": lambda x: (np.tanh(x) + expit(x) + np.maximum(x, 0.0)) / 3,
}
# reference(x, module): the formula, with the module's parameters where they are random.
REFERENCES = {
    **{name: (lambda x, m, f=f: f(x)) for name, f in _FIXED.items()},
    "tact": lambda x, m: _tact(x, m, squared=False),
    "mtact": lambda x, m: _tact(x, m, squared=True),
}
GRID = np.concatenate([np.linspace(-8.0, 8.0, 1601), [-1e4, -30.0, 30.0, 1e4]])


def test_every_registered_activation_has_a_reference() -> None:
    assert set(ACTIVATIONS) == set(REFERENCES)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_value_matches_float64_reference(name: str) -> None:
    module = example_act(name).build(4).double()
    x = torch.from_numpy(GRID)
    out = module(x).detach().numpy()
    with np.errstate(over="ignore"):
        expected = REFERENCES[name](GRID, module)
    assert np.all(np.isfinite(out)), f"{name} is not finite on the grid"
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_float32_close_to_reference_and_dtype_preserved(name: str) -> None:
    module = example_act(name).build()
    x = torch.from_numpy(GRID).float()
    out = module(x)
    assert out.dtype == torch.float32
    assert out.shape == x.shape
    with np.errstate(over="ignore"):
        expected = REFERENCES[name](GRID, module)
    np.testing.assert_allclose(out.detach().double().numpy(), expected, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_gradients_pass_gradcheck(name: str) -> None:
    x = torch.randn(64, dtype=torch.float64) * 3
    # Stay away from the kinks of the piecewise functions (0 and +-3 for hardswish).
    x = x[(x.abs() > 1e-2) & ((x.abs() - 3).abs() > 1e-2)].requires_grad_()
    module = example_act(name).build().double()
    assert torch.autograd.gradcheck(module, (x,))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_works_on_feature_maps(name: str) -> None:
    module = example_act(name).build(3)
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
    assert resolve_act("leaky_relu(0.3)") == resolve_act("leaky_relu(slope=0.3)")  # by position
    with pytest.raises(ComponentSpecError, match="takes 1 option"):
        resolve_act("leaky_relu(0.3, 0.2)")
    with pytest.raises(ComponentSpecError, match="cannot parse"):
        resolve_act("leaky_relu(slope=0.3")
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


LEARNABLE = [name for name in ACTIVATIONS if ACTIVATIONS.get(name).properties.learnable]


@pytest.mark.parametrize("name", LEARNABLE)
def test_learnable_parameters_get_gradients_and_are_float32(name: str) -> None:
    module = build_activation(name, channels=4)
    params = dict(module.named_parameters())
    assert params, f"{name} declares learnable parameters but has none"
    assert all(p.dtype == torch.float32 for p in params.values())
    module(torch.randn(8, 4, 3, 3)).pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params.values())
    assert module.tracked_values()


@pytest.mark.parametrize("name", LEARNABLE)
def test_parameter_init_is_deterministic_under_a_seed(name: str) -> None:
    torch.manual_seed(5)
    first = build_activation(name, channels=4).tracked_values()
    torch.manual_seed(5)
    assert build_activation(name, channels=4).tracked_values() == first


def test_tact_special_cases() -> None:
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    tact = build_activation("tact(alpha=1.0, beta=0.0)").double()
    torch.testing.assert_close(tact(x), torch.nn.functional.silu(x))
    swish = build_activation("tact(alpha=1.0, beta=1.0)").double()
    torch.testing.assert_close(swish(x), x * torch.sigmoid(2 * x))
    near_relu = build_activation("tact(alpha=1.0, beta=200.0)").double()
    torch.testing.assert_close(near_relu(x), torch.relu(x), atol=3e-3, rtol=0)
    sigmoid_like = build_activation("tact(alpha=0.0, beta=1.0)").double()
    torch.testing.assert_close(sigmoid_like(x), torch.sigmoid(2 * x))
    # The (A x + B)(tanh(C x) + 1) form of the reference code, A = alpha/2, C = (1+beta)/2.
    alpha, beta = 0.3, 0.4
    reference = (alpha / 2 * x + 0.5 - alpha / 2) * (torch.tanh((1 + beta) / 2 * x) + 1)
    torch.testing.assert_close(build_activation(f"tact(alpha={alpha}, beta={beta})").double()(x),
                               reference)
    reference_m = (alpha**2 / 2 * x + 0.5 - alpha**2 / 2) * (torch.tanh((1 + beta**2) / 2 * x) + 1)
    torch.testing.assert_close(
        build_activation(f"mtact(alpha={alpha}, beta={beta})").double()(x), reference_m)


def test_tact_draws_uniform_per_site_values() -> None:
    torch.manual_seed(0)
    draws = [build_activation("tact").tracked_values() for _ in range(200)]
    alphas = np.array([d["alpha"] for d in draws])
    assert alphas.min() >= 0.0
    assert alphas.max() <= 0.5
    assert len(set(alphas)) == 200  # one draw per site, not one per process
    assert abs(alphas.mean() - 0.25) < 0.03


def test_the_two_arelus_are_told_apart() -> None:
    """`arelu` is Hu et al. 2023's max(a z + c, b z + d); Chen et al. 2020's attention
    AReLU is `attention_relu`: slope 1 + sigmoid(beta) above 0, clamp(alpha, 0.01, 0.99)
    below, both learned."""
    assert ACTIVATIONS.get("arelu").properties.reference == "Hu et al. 2023"
    assert ACTIVATIONS.get("attention_relu").properties.reference == "Chen et al. 2020"
    assert "attention_relu" in ACTIVATIONS.get("arelu").__doc__
    module = build_activation("attention_relu(alpha=1.5, beta=-1.0)").double()
    x = torch.tensor([-2.0, -0.5, 0.5, 2.0], dtype=torch.float64)
    expected = torch.where(x >= 0, (1 + torch.sigmoid(torch.tensor(-1.0))) * x, 0.99 * x)
    torch.testing.assert_close(module(x), expected.double())
    start = build_activation("attention_relu")
    start(torch.tensor([-1.0, 1.0])).sum().backward()
    assert start.alpha.grad.item() == pytest.approx(-1.0)  # d/dalpha of -alpha * relu(1)
    assert start.beta.grad.item() == pytest.approx(0.104994, abs=1e-6)  # sigmoid'(2)


def test_arelu_starts_and_identity_option() -> None:
    x = torch.linspace(-3, 3, 13)
    torch.testing.assert_close(build_activation("arelu")(x), torch.relu(x))
    torch.testing.assert_close(build_activation("arelu(start=identity)")(x), x)


def test_combination_weights_are_normalized_and_frozen_variants() -> None:
    combo = build_activation("combo_adaptive")
    values = combo.tracked_values()
    assert values["X"] == pytest.approx(1 / 3)
    assert values["X"] + values["Y"] + values["Z"] == pytest.approx(1.0)
    with torch.no_grad():
        combo.logits.copy_(torch.tensor([3.0, -2.0, 0.5]))
    values = combo.tracked_values()
    assert values["X"] + values["Y"] + values["Z"] == pytest.approx(1.0)
    assert min(values["X"], values["Y"], values["Z"]) > 0
    x = torch.linspace(-3, 3, 13)
    parts = torch.tanh(x) + torch.sigmoid(x) + torch.relu(x)
    torch.testing.assert_close(build_activation("combo_fixed(weights=one)")(x), parts)
    torch.testing.assert_close(build_activation("combo_fixed(weights=third)")(x), parts / 3)
    assert not list(build_activation("combo_fixed(weights=third)").parameters())


def test_pelu_starts_as_elu_and_stays_positive() -> None:
    x = torch.linspace(-4, 4, 41)
    pelu = build_activation("pelu")
    torch.testing.assert_close(pelu(x), torch.nn.functional.elu(x))
    with torch.no_grad():
        pelu.a.fill_(-1.0)
        pelu.b.fill_(0.01)
    pelu.constrain()
    assert pelu.a.item() == pytest.approx(0.1)
    assert pelu.b.item() == pytest.approx(0.1)


def test_per_channel_learnable_parameters_broadcast() -> None:
    module = build_activation("swish_beta(per_channel=True)", channels=3)
    with torch.no_grad():
        module.beta.copy_(torch.tensor([0.0, 1.0, 2.0]))
    x = torch.ones(2, 3, 4, 4)
    out = module(x)
    torch.testing.assert_close(out[0, :, 0, 0], torch.sigmoid(torch.tensor([0.0, 1.0, 2.0])))


@pytest.mark.parametrize(("name", "formula"), [
    ("mish", lambda x: x * torch.tanh(torch.nn.functional.softplus(x))),
    ("silu", lambda x: x * torch.sigmoid(x)),
])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_fused_kernels_equal_their_formulas(name: str, formula, dtype, tol) -> None:
    """actlab's mish (on CPU its own one-sigmoid kernel) and silu/swish (PyTorch's fused
    kernel) are the fast implementations that keep only the input for backward
    (benchmarks/af_cost.py); they must equal the paper's formula in value and gradient,
    including far into both tails."""
    x = torch.cat([torch.linspace(-30, 30, 4001, dtype=dtype), torch.randn(5000, dtype=dtype),
                   torch.tensor([-1e4, -100.0, 100.0, 1e4], dtype=dtype)])
    fused_x = x.clone().requires_grad_()
    plain_x = x.clone().requires_grad_()
    fused = build_activation(name)(fused_x)
    plain = formula(plain_x)
    fused.sum().backward()
    plain.sum().backward()
    torch.testing.assert_close(fused, plain, rtol=tol, atol=tol)
    torch.testing.assert_close(fused_x.grad, plain_x.grad, rtol=tol, atol=tol)


def test_cpu_mish_has_a_double_backward() -> None:
    """Gradient penalties and Hessian-vector products differentiate the gradient again."""
    x = torch.randn(64, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(build_activation("mish"), (x,))
    assert torch.autograd.gradgradcheck(build_activation("mish"), (x,))
    (grad,) = torch.autograd.grad(build_activation("mish")(x).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad.sum(), x)
    (expected,) = torch.autograd.grad(torch.autograd.grad(
        torch.nn.functional.mish(x).sum(), x, create_graph=True)[0].sum(), x)
    torch.testing.assert_close(second, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cpu_mish_in_half_precision_is_as_accurate_as_torchs(dtype) -> None:
    x = torch.linspace(-8, 8, 20001, dtype=torch.float64)
    exact_x = x.clone().requires_grad_()
    exact_y = torch.nn.functional.mish(exact_x)
    exact_y.sum().backward()
    errors = {}
    for name, fn in (("actlab", build_activation("mish")), ("torch", torch.nn.functional.mish)):
        low = x.to(dtype).requires_grad_()
        y = fn(low)
        y.sum().backward()
        errors[name] = ((y.double() - exact_y.detach()).abs().max().item(),
                        (low.grad.double() - exact_x.grad).abs().max().item())
    assert errors["actlab"][0] <= errors["torch"][0] * 1.01
    assert errors["actlab"][1] <= errors["torch"][1] * 1.01


def test_cpu_mish_keeps_only_its_input_and_vmaps() -> None:
    """The CPU Mish kernel's point is memory as well as speed: autograd keeps one tensor
    (the input), and cohort mode's vmap over stacked members gives each member's values
    and gradients."""
    saved: list[torch.Tensor] = []
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        build_activation("mish")(x)
    assert len(saved) == 1
    assert saved[0].shape == x.shape

    stacked = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    looped = stacked.detach().clone().requires_grad_()
    torch.vmap(build_activation("mish"))(stacked).sum().backward()
    torch.stack([torch.nn.functional.mish(m) for m in looped]).sum().backward()
    torch.testing.assert_close(stacked.grad, looped.grad, rtol=1e-12, atol=1e-12)
