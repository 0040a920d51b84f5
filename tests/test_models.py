import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actlab.activations import resolve_act
from actlab.inits import INITS, apply_init
from actlab.models import (
    MODELS,
    ActivationSwapError,
    activation_sites,
    build_model,
    count_parameters,
    verify_activations,
)

ACTS = ["relu", "mish", "prelu", "leaky_relu(slope=0.3)"]
SIZES = {"lenet5": [(1, 28), (3, 32)], "simple_cnn": [(1, 28), (3, 32)],
         "fixup_resnet20": [(3, 32), (1, 28)], "fixup_resnet32": [(3, 32)]}


def test_every_model_declares_its_test_sizes() -> None:
    assert set(MODELS) == set(SIZES)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("act", ACTS)
def test_forward_backward_and_swap(name: str, act: str) -> None:
    for channels, size in SIZES[name]:
        model = build_model(name, act=act, num_classes=7, in_channels=channels, image_size=size)
        x = torch.randn(3, channels, size, size)
        out = model(x)
        assert out.shape == (3, 7)
        loss = F.cross_entropy(out, torch.tensor([0, 1, 2]))
        loss.backward()
        assert torch.isfinite(loss)
        sites = activation_sites(model)
        assert len(sites) == model.activation_site_count > 0
        assert {m.spec.label for m in sites.values()} == {resolve_act(act).label}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("init", list(INITS))
def test_every_initializer_applies(name: str, init: str) -> None:
    model = build_model(name, act="relu", in_channels=1, image_size=28)
    batch = torch.randn(16, 1, 28, 28)
    if init == "fixup" and not MODELS.entry(name).meta.get("fixup"):
        with pytest.raises(ValueError, match="Models that support fixup"):
            apply_init(model, init, act="relu")
        return
    apply_init(model, init, act="relu", batch=batch)
    assert torch.isfinite(model(batch)).all()


def test_lenet5_parameter_count_matches_the_paper_geometry() -> None:
    # 156 + 2,416 + 48,120 + 10,164 + 850 (LeCun et al. 1998 layer sizes, 10 classes).
    assert count_parameters(build_model("lenet5", in_channels=1, image_size=28)) == 61_706


class LeftoverModule(nn.Module):
    def __init__(self, act) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.act = act.build(4)
        self.extra = nn.ReLU()

    def forward(self, x):
        return self.extra(self.act(self.conv(x)))


class LeftoverFunctional(nn.Module):
    def __init__(self, act) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.act = act.build(4)

    def forward(self, x):
        return F.relu(self.act(self.conv(x)))


class WrongActivation(nn.Module):
    def __init__(self, act) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.act = resolve_act("tanh").build(4)

    def forward(self, x):
        return self.act(self.conv(x))


@pytest.mark.parametrize(("cls", "message"), [
    (LeftoverModule, "extra is a PyTorch ReLU module"),
    (LeftoverFunctional, "functional relu call"),
    (WrongActivation, "act is tanh"),
])
def test_swap_check_rejects_leftover_nonlinearities(cls, message: str) -> None:
    act = resolve_act("mish")
    with pytest.raises(ActivationSwapError, match=message):
        verify_activations(cls(act), act)


def test_fixup_resnet20_parameter_count() -> None:
    convs = 3 * 16 * 9 + 6 * 16 * 16 * 9  # stem, stage 1
    convs += 16 * 32 * 9 + 5 * 32 * 32 * 9 + 32 * 64 * 9 + 5 * 64 * 64 * 9  # stages 2, 3
    classifier = 64 * 10 + 10
    scalars = 9 * 5 + 2  # 4 biases and 1 multiplier per block; stem and head biases
    assert count_parameters(build_model("fixup_resnet20")) == convs + classifier + scalars


def test_bad_model_arguments_fail_clearly() -> None:
    with pytest.raises(ValueError, match="at least 28x28"):
        build_model("lenet5", image_size=16)
    with pytest.raises(KeyError, match="unknown model 'resnet9000'"):
        build_model("resnet9000")
    with pytest.raises(TypeError):
        build_model("lenet5", depth=3)
