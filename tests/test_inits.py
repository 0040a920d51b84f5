"""Every registered initializer against its formula on large layers."""

import math

import pytest
import torch
from torch import nn

from actlab.activations import matched_gain
from actlab.inits import INITS, apply_init
from actlab.inits.base import weighted_layers
from actlab.models import build_model
from actlab.study import StudyError, parse_study

FAN_IN, FAN_OUT = 64 * 9, 128 * 9  # Conv2d(64, 128, 3)
HE_GAIN = matched_gain("tanh")

# Expected weight std for a Conv2d(64 -> 128, 3x3) initialized for tanh (matched gain).
EXPECTED_STD = {
    "default": 1 / math.sqrt(3 * FAN_IN),
    "xavier_uniform": HE_GAIN * math.sqrt(6 / (FAN_IN + FAN_OUT)) / math.sqrt(3),
    "xavier_normal": HE_GAIN * math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "he_uniform": HE_GAIN / math.sqrt(FAN_IN),
    "he_normal": HE_GAIN / math.sqrt(FAN_IN),
    "lecun_normal": 1 / math.sqrt(FAN_IN),
    "normal": 1.0,
    "orthogonal": HE_GAIN / math.sqrt(FAN_IN),  # 128 orthonormal rows of length 576, x gain
}


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(64, 128, 3)
        self.bn = nn.BatchNorm2d(128)
        self.fc = nn.Linear(128, 10)


# Initializers that depend on data (LSUV) or on a model variant (Fixup): own tests below.
DEPENDENT = {"lsuv", "fixup"}


def test_every_registered_initializer_has_an_expectation() -> None:
    assert set(INITS) == set(EXPECTED_STD) | DEPENDENT


@pytest.mark.parametrize("name", list(EXPECTED_STD))
def test_weight_statistics_match_formula(name: str) -> None:
    model = TwoLayers()
    with torch.no_grad():
        model.bn.weight.fill_(3.0)
    apply_init(model, name, act="tanh")
    weight = model.conv.weight
    assert weight.mean().item() == pytest.approx(0.0, abs=0.02 * EXPECTED_STD[name])
    assert weight.std().item() == pytest.approx(EXPECTED_STD[name], rel=0.02)
    assert model.bn.weight.eq(1).all()
    assert model.bn.bias.eq(0).all()
    if name != "default":
        assert model.conv.bias.eq(0).all()
        assert model.fc.bias.eq(0).all()


def test_uniform_initializers_respect_their_bounds() -> None:
    model = TwoLayers()
    apply_init(model, "he_uniform(mode=fan_out)", act="relu")
    bound = math.sqrt(3) * math.sqrt(2) / math.sqrt(FAN_OUT)
    assert model.conv.weight.abs().max().item() <= bound
    assert model.conv.weight.abs().max().item() > 0.99 * bound
    apply_init(model, "default", act="relu")
    assert model.conv.weight.abs().max().item() <= 1 / math.sqrt(FAN_IN)


def test_he_fan_out_and_explicit_gain() -> None:
    model = TwoLayers()
    apply_init(model, "he_normal(mode=fan_out)", act="relu")
    assert model.conv.weight.std().item() == pytest.approx(math.sqrt(2 / FAN_OUT), rel=0.02)
    apply_init(model, "xavier_normal(gain=1.0)", act="relu")
    assert model.conv.weight.std().item() == pytest.approx(math.sqrt(2 / (FAN_IN + FAN_OUT)),
                                                           rel=0.02)


def test_torch_gain_mode() -> None:
    model = TwoLayers()
    apply_init(model, "he_normal", act="tanh", gain="torch")
    assert model.conv.weight.std().item() == pytest.approx((5 / 3) / math.sqrt(FAN_IN), rel=0.02)
    with pytest.raises(ValueError, match="no gain for activation 'mish'"):
        apply_init(model, "he_normal", act="mish", gain="torch")


def test_orthogonal_rows_are_orthonormal_times_gain() -> None:
    model = TwoLayers()
    apply_init(model, "orthogonal", act="relu")
    rows = model.conv.weight.reshape(128, -1)
    gram = rows @ rows.T
    assert torch.allclose(gram, 2.0 * torch.eye(128), atol=1e-4)


def test_initialization_is_seeded() -> None:
    first = build_model("lenet5", act="relu", in_channels=1, image_size=28)
    second = build_model("lenet5", act="relu", in_channels=1, image_size=28)
    torch.manual_seed(3)
    apply_init(first, "he_normal", act="relu")
    torch.manual_seed(3)
    apply_init(second, "he_normal", act="relu")
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bad_options_fail_clearly() -> None:
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        apply_init(TwoLayers(), "he_normal(mode=fanin)", act="relu")


def _layer_output_stds(model: nn.Module, batch: torch.Tensor) -> dict[str, float]:
    stds: dict[str, float] = {}
    hooks = [layer.register_forward_hook(
        lambda _m, _i, out, name=name: stds.__setitem__(name, out.std().item()))
        for name, layer in weighted_layers(model)]
    with torch.no_grad():
        model(batch)
    for hook in hooks:
        hook.remove()
    return stds


class WithBatchNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(torch.tanh(self.bn(self.conv(x))).flatten(1))


@pytest.mark.parametrize(("model_name", "act"), [("lenet5", "relu"), ("simple_cnn", "tanh"),
                                                 ("lenet5", "mish")])
def test_lsuv_brings_every_layer_to_unit_variance(model_name: str, act: str) -> None:
    """|Var - 1| < tol, as in Mishkin & Matas 2016 (Algorithm 1), not |std - 1| < tol
    (which accepts variances from 0.81 to 1.21)."""
    model = build_model(model_name, act=act, in_channels=3, image_size=32)
    batch = torch.randn(128, 3, 32, 32) * 3 + 1
    report = apply_init(model, "lsuv", act=act, batch=batch)["lsuv"]
    stds = _layer_output_stds(model.train(), batch)
    assert set(report) == set(stds)
    for name, std in stds.items():
        assert abs(std ** 2 - 1.0) < 0.1, (name, std)
        assert report[name]["variance"] == pytest.approx(std ** 2, rel=1e-5)
        assert 0 <= report[name]["iterations"] <= 10


def test_lsuv_rescales_a_layer_whose_std_alone_looks_close_enough() -> None:
    """An orthogonal square layer keeps its input's mean square: input std 0.93 gives an
    output variance of 0.865, outside 1 ± 0.1 though the std is within 1 ± 0.1."""
    layer = nn.Sequential(nn.Linear(256, 256, bias=False))
    batch = torch.randn(4096, 256) * 0.93
    report = apply_init(layer, "lsuv", act="identity", batch=batch)["lsuv"]
    assert report["0"]["iterations"] >= 1
    assert abs(report["0"]["variance"] - 1.0) < 0.1


def test_lsuv_restores_mode_and_buffers_and_needs_a_batch() -> None:
    model = WithBatchNorm().eval()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    apply_init(model, "lsuv", act="tanh", batch=torch.randn(32, 3, 16, 16))
    assert not model.training
    for key, value in before.items():
        assert torch.equal(model.state_dict()[key], value)
    with pytest.raises(ValueError, match="lsuv needs a batch"):
        apply_init(model, "lsuv", act="tanh")


def test_fixup_zero_inits_branch_ends_and_classifier() -> None:
    model = build_model("fixup_resnet20", act="relu")
    for p in model.parameters():
        torch.nn.init.normal_(p)
    report = apply_init(model, "fixup", act="relu")["fixup"]
    layout = model.fixup_layout()
    assert report["branches"] == 9
    assert report["scale"] == pytest.approx(9 ** -0.5)
    for _first, last in layout["branches"]:
        assert last.weight.eq(0).all()
    assert layout["classifier"].weight.eq(0).all()
    assert layout["classifier"].bias.eq(0).all()
    assert all(s.value.item() == (0.0 if s.kind == "bias" else 1.0) for s in layout["scalars"])
    convs = torch.cat([b[0].weight.flatten() for b in layout["branches"][6:]])  # 64 channels
    assert convs.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)) / 3, rel=0.03)
    out = model(torch.randn(4, 3, 32, 32))
    assert out.eq(0).all()  # a zero classifier: every logit 0 at initialization
    out.sum().backward()
    assert layout["classifier"].weight.grad.abs().sum() > 0


SUPPORTED = "Models that support fixup: fixup_resnet18, fixup_resnet20"


def test_fixup_on_other_models_is_an_error_naming_the_supported_ones() -> None:
    with pytest.raises(ValueError, match=SUPPORTED):
        apply_init(build_model("lenet5", in_channels=1, image_size=28), "fixup", act="relu")
    with pytest.raises(StudyError, match=SUPPORTED):
        parse_study({"name": "s", "model": "lenet5", "init": "fixup"}).expand()
    assert parse_study({"name": "s", "model": "fixup_resnet20", "init": "fixup"}).expand()
