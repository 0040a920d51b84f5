"""Every registered initializer against its formula on large layers."""

import math

import pytest
import torch
from torch import nn

from actlab.activations import matched_gain
from actlab.inits import INITS, apply_init
from actlab.models import build_model

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


def test_every_registered_initializer_has_an_expectation() -> None:
    assert set(INITS) == set(EXPECTED_STD)


@pytest.mark.parametrize("name", list(INITS))
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
