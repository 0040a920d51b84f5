"""The model zoo: every registered model, forward and backward with several activations,
the activation swap check, every initializer, and parameter counts and MACs against
published figures (full-size builds on the meta device, so they cost nothing)."""

import copy
import functools
from pathlib import Path

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
    model_options,
    verify_activations,
)
from actlab.models.base import _ActivationAwareTracer
from actlab.models.info import describe_model

# A fixed rectifier, a smooth one, a learnable one with a random per-site start, and a
# per-channel learnable one (needs every site to know its channel count).
ACTS = ["relu", "mish", "tact", "prelu(per_channel=True)"]

# Per model: (in_channels, image_size) pairs it is tested at, and options that shrink it
# for the test (the full-size architecture is checked by the count tests below).
SIZES: dict[str, list[tuple[int, int]]] = {
    "lenet5": [(1, 28), (3, 32)], "simple_cnn": [(1, 28), (3, 32)],
    "deep_cnn": [(1, 28), (3, 32)], "alexnet": [(1, 28), (3, 32)],
    "vgg11": [(1, 28), (3, 32)], "vgg16": [(1, 28), (3, 32)],
    "squeezenet": [(1, 28), (3, 32)], "googlenet": [(1, 16), (3, 32)],
    "densenet121": [(1, 28), (3, 32)], "mobilenetv2": [(1, 28), (3, 32)],
    "resnet18": [(1, 28), (3, 32)], "resnet34": [(3, 32)], "resnet50": [(1, 28), (3, 32)],
    "preact_resnet18": [(1, 28), (3, 32)], "se_resnet18": [(1, 28), (3, 32)],
    "xresnet18": [(1, 28), (3, 32)], "xresnet34": [(3, 32)], "xresnet50": [(3, 32)],
    "resnet20": [(1, 28), (3, 32)], "resnet32": [(3, 32)], "resnet44": [(3, 32)],
    "resnet56": [(3, 32)], "resnet110": [(3, 32)],
    "wrn": [(1, 28), (3, 32)], "wrn16_4": [(3, 32)], "wrn16_8": [(3, 8)],
    "wrn22_8": [(3, 8)], "wrn28_10": [(3, 8)], "wrn40_4": [(3, 8)],
    "fixup_resnet20": [(1, 28), (3, 32)], "fixup_resnet32": [(3, 32)],
    "fixup_resnet44": [(3, 32)], "fixup_resnet56": [(3, 32)],
    "fixup_resnet18": [(1, 28), (3, 32)],
}
SMALL = {
    "alexnet": {"hidden": 64}, "vgg11": {"width": 16}, "vgg16": {"width": 16},
    "densenet121": {"growth_rate": 4}, "mobilenetv2": {"width_mult": 0.25},
    "resnet18": {"width": 8}, "resnet34": {"width": 8}, "resnet50": {"width": 8},
    "preact_resnet18": {"width": 8}, "se_resnet18": {"width": 16},
    "xresnet18": {"width": 8}, "xresnet34": {"width": 8}, "xresnet50": {"width": 8},
    "resnet56": {"width": 8}, "resnet110": {"width": 4}, "wrn": {"widen": 1},
    "fixup_resnet18": {"width": 8}, "fixup_resnet56": {"width": 8},
}
# Models with a stem choice, tested once more with the ImageNet stem at 64x64.
IMAGENET_STEM = ["alexnet", "vgg11", "squeezenet", "googlenet", "densenet121", "mobilenetv2",
                 "resnet18", "resnet50", "preact_resnet18", "se_resnet18", "xresnet50",
                 "fixup_resnet18"]


def test_every_model_declares_its_test_sizes() -> None:
    assert set(MODELS) == set(SIZES)
    assert set(SMALL) <= set(MODELS)
    for name in IMAGENET_STEM:
        assert "stem" in model_options(name)


def forward_backward(model: nn.Module, channels: int, size: int, classes: int = 7) -> None:
    x = torch.randn(2, channels, size, size)
    out = model(x)
    assert out.shape == (2, classes)
    loss = F.cross_entropy(out, torch.tensor([0, 1]))
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


# Full-width presets and the deepest models take about a second per case: they are tested
# with the most demanding activation (learnable, per channel: every site must know its
# channel count) and the initializers that depend on the model (LSUV's per-layer passes,
# Fixup's layout); every other model with every activation and initializer.
HEAVY = {"googlenet", "densenet121", "resnet110", "wrn16_8", "wrn22_8", "wrn28_10", "wrn40_4"}
HEAVY_ACTS = {"prelu(per_channel=True)"}
HEAVY_INITS = {"default", "he_normal", "lsuv", "fixup"}


def cases(values: list[str], heavy: set[str]) -> list:
    return [(name, value) for name in MODELS for value in values
            if name not in HEAVY or value in heavy]


@pytest.mark.parametrize(("name", "act"), cases(ACTS, HEAVY_ACTS))
def test_forward_backward_and_swap(name: str, act: str) -> None:
    for channels, size in SIZES[name]:
        model = build_model(name, act=act, num_classes=7, in_channels=channels,
                            image_size=size, **SMALL.get(name, {}))
        forward_backward(model, channels, size)
        sites = activation_sites(model)
        fixed = getattr(model, "fixed_activation_sites", ())
        free = {n: m for n, m in sites.items() if not any(n.endswith(f) for f in fixed)}
        assert len(free) == model.activation_site_count > 0
        assert {m.spec.label for m in free.values()} == {resolve_act(act).label}


@pytest.mark.parametrize("name", IMAGENET_STEM)
def test_imagenet_stem(name: str) -> None:
    model = build_model(name, act="silu", num_classes=5, image_size=64, stem="imagenet",
                        **SMALL.get(name, {}))
    forward_backward(model, 3, 64, classes=5)


@pytest.mark.parametrize("name", list(MODELS))
def test_symbolic_trace_sees_the_whole_forward(name: str) -> None:
    # The hidden-functional check relies on torch.fx; every zoo model must trace.
    channels, size = SIZES[name][0]
    model = build_model(name, in_channels=channels, image_size=size, **SMALL.get(name, {}))
    graph = _ActivationAwareTracer().trace(model)
    assert any(node.op == "call_module" for node in graph.nodes)


def init_test_size(name: str) -> int:
    # LSUV visits every layer with forward passes: small inputs keep deep models quick.
    return 28 if name == "lenet5" else 16


@functools.cache
def built_for_init_tests(name: str) -> nn.Module:
    size = init_test_size(name)
    return build_model(name, act="relu", in_channels=1, image_size=size, **SMALL.get(name, {}))


@pytest.mark.parametrize(("name", "init"), cases(list(INITS), HEAVY_INITS))
def test_every_initializer_applies(name: str, init: str) -> None:
    size = init_test_size(name)
    model = copy.deepcopy(built_for_init_tests(name))
    batch = torch.randn(4, 1, size, size)
    if init == "fixup" and not MODELS.entry(name).meta.get("fixup"):
        with pytest.raises(ValueError, match="Models that support fixup"):
            apply_init(model, init, act="relu")
        return
    info = apply_init(model, init, act="relu", batch=batch)
    if init == "normal":
        # N(0, 1) is the control that explodes (He et al. 2015): deep nets without
        # normalization overflow at init by design, so only check that it was applied.
        weight = max((m.weight for m in model.modules() if isinstance(m, nn.Conv2d)),
                     key=torch.numel)
        assert weight.std().item() == pytest.approx(1.0, rel=0.1)
        return
    assert torch.isfinite(model(batch)).all()
    if init == "lsuv":
        assert all(abs(layer["std"] - 1) < 0.1 for layer in info["lsuv"].values())


def test_se_gates_stay_sigmoid_and_everything_else_follows_the_study() -> None:
    model = build_model("se_resnet18", act="mish", width=16)
    sites = activation_sites(model)
    gates = {n: m.spec.label for n, m in sites.items() if n.endswith("se.gate")}
    assert len(gates) == 8
    assert set(gates.values()) == {"sigmoid"}
    excitations = [n for n in sites if n.endswith("se.act")]
    assert len(excitations) == 8
    assert {sites[n].spec.label for n in excitations} == {"mish"}
    assert model.activation_site_count == len(sites) - 8


def test_mobilenet_projections_stay_linear() -> None:
    model = build_model("mobilenetv2", act="relu", width_mult=0.25)
    # 1 stem + per block (expand if t != 1) + depthwise, + the last 1x1 conv.
    blocks = [1, 2, 3, 4, 3, 3, 1]
    expected = 1 + sum(2 * n for n in blocks) - 1 + 1
    assert model.activation_site_count == expected


@pytest.mark.parametrize("name", list(MODELS))
def test_layer_measurements_on_every_model(name: str) -> None:
    """What a run records per layer and epoch: mean and std of every Conv/Linear weight,
    and the dead-unit fraction of every rectifier site (on a fixed batch)."""
    from actlab.inits.base import weighted_layers
    from actlab.train.monitors import dead_unit_fractions, weight_statistics

    channels, size = SIZES[name][0]
    model = build_model(name, act="relu", in_channels=channels, image_size=size,
                        **SMALL.get(name, {}))
    weights = weight_statistics(model)
    assert {(layer, metric) for layer, metric, _ in weights} == {
        (layer, metric) for layer, _ in weighted_layers(model)
        for metric in ("weight_mean", "weight_std")}
    dead = dead_unit_fractions(model, torch.randn(8, channels, size, size))
    sites = [n for n, m in activation_sites(model).items() if m.spec.properties.rectifier]
    assert [layer for layer, _, _ in dead] == sites
    assert all(0.0 <= value <= 1.0 for *_, value in dead)
    assert model.training  # measured in eval mode, then restored


def test_deep_cnn_pools_while_it_can_and_skips_the_first_batchnorm() -> None:
    model = build_model("deep_cnn", depth=12, width=32)
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(pools) == 5  # 32 -> 1; the sixth would leave nothing
    assert len(norms) == 11
    assert model.classifier[-1].in_features == 32
    plain = build_model("deep_cnn", depth=2, batchnorm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


def meta_count(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return count_parameters(build_model(name, **kwargs))


IMAGENET = {"num_classes": 1000, "image_size": 224}


@pytest.mark.parametrize(("name", "options", "expected"), [
    # torchvision's published num_params (pytorch.org/vision/stable/models.html), 1000 classes.
    ("resnet18", {}, 11_689_512), ("resnet34", {}, 21_797_672), ("resnet50", {}, 25_557_032),
    ("alexnet", {}, 61_100_840), ("vgg11", {"batchnorm": False}, 132_863_336),
    ("vgg11", {}, 132_868_840), ("vgg16", {"batchnorm": False}, 138_357_544),
    ("vgg16", {}, 138_365_992), ("densenet121", {}, 7_978_856),
    ("mobilenetv2", {}, 3_504_872), ("squeezenet", {}, 1_248_424),
    ("squeezenet", {"version": "1_1"}, 1_235_496),
    # torchvision's GoogLeNet (6,624,904) uses 3x3 in the 5x5 branch; the paper's 5x5 adds
    # 16 * sum(5x5 reduce * 5x5 out) over the nine inception modules.
    ("googlenet", {}, 6_624_904 + 16 * (16 * 32 + 32 * 96 + 16 * 48 + 24 * 64 + 24 * 64
                                        + 32 * 64 + 32 * 128 + 32 * 128 + 48 * 128)),
])
def test_imagenet_parameter_counts_match_torchvision(name, options, expected) -> None:
    assert meta_count(name, **IMAGENET, **options) == expected


@pytest.mark.parametrize(("name", "gmacs"), [
    # torchvision's published GFLOPS column (multiply-accumulates of conv and linear layers).
    ("resnet18", 1.81), ("resnet50", 4.09), ("alexnet", 0.71), ("densenet121", 2.83),
    ("mobilenetv2", 0.30), ("squeezenet", 0.82),
])
def test_imagenet_macs_match_torchvision(name: str, gmacs: float) -> None:
    assert round(describe_model(name, **IMAGENET).macs / 1e9, 2) == gmacs


def test_vgg16_macs_match_torchvision() -> None:
    info = describe_model("vgg16", batchnorm=False, **IMAGENET)
    assert round(info.macs / 1e9, 2) == 15.47


@pytest.mark.parametrize(("name", "options", "expected"), [
    # The CIFAR models of kuangliu/pytorch-cifar (3x3 stem), 10 classes, as commonly quoted.
    ("resnet18", {}, 11_173_962), ("resnet34", {}, 21_282_122), ("resnet50", {}, 23_520_842),
    ("vgg11", {}, 9_231_114), ("vgg16", {}, 14_728_266), ("densenet121", {}, 6_956_298),
    # Their PreActResNet18 (11,171,146) omits the final BN - act of He et al. 2016b.
    ("preact_resnet18", {}, 11_171_146 + 2 * 512),
    # CIFAR ResNet-20 with projection (option B) shortcuts: the often-quoted 272,474.
    ("resnet20", {"shortcut": "B"}, 272_474),
    ("lenet5", {"in_channels": 1, "image_size": 28}, 61_706),
])
def test_cifar_parameter_counts(name, options, expected) -> None:
    assert meta_count(name, **options) == expected


@pytest.mark.parametrize(("name", "millions"), [
    # He et al. 2016, Table 6 (option A shortcuts).
    ("resnet20", 0.27), ("resnet32", 0.46), ("resnet44", 0.66), ("resnet56", 0.85),
    ("resnet110", 1.7),
    # Zagoruyko & Komodakis 2016, WRN-d-k on CIFAR-10.
    ("wrn16_4", 2.7), ("wrn16_8", 11.0), ("wrn22_8", 17.2), ("wrn28_10", 36.5),
    ("wrn40_4", 8.9),
])
def test_paper_parameter_counts(name: str, millions: float) -> None:
    digits = 2 if millions < 1 else 1
    assert round(meta_count(name) / 1e6, digits) == millions


def test_derived_parameter_counts() -> None:
    resnet18 = 11_173_962
    # SE adds two 1x1 convs (C -> C/16 -> C, with biases) per block, 2 blocks per stage.
    se = sum(2 * (2 * c * c // 16 + c // 16 + c) for c in (64, 128, 256, 512))
    assert meta_count("se_resnet18") == resnet18 + se
    # Fixup removes every BN (9,600 parameters) and adds 5 scalars per block + 2.
    assert meta_count("fixup_resnet18") == resnet18 - 9_600 + 8 * 5 + 2
    # The CIFAR MobileNetV2 changes strides only; the classifier has 10 outputs.
    assert meta_count("mobilenetv2") == 3_504_872 - 1281 * 990


def test_fixup_resnet20_parameter_count() -> None:
    convs = 3 * 16 * 9 + 6 * 16 * 16 * 9  # stem, stage 1
    convs += 16 * 32 * 9 + 5 * 32 * 32 * 9 + 32 * 64 * 9 + 5 * 64 * 64 * 9  # stages 2, 3
    classifier = 64 * 10 + 10
    scalars = 9 * 5 + 2  # 4 biases and 1 multiplier per block; stem and head biases
    assert meta_count("fixup_resnet20") == convs + classifier + scalars


def test_auto_stem_follows_the_image_size() -> None:
    small = describe_model("resnet18", image_size=64)
    large = describe_model("resnet18", image_size=224)
    # At 64 px the CIFAR stem keeps full resolution: 4x the MACs of 32 px; at 224 px the
    # ImageNet stem downsamples by 4 first.
    assert small.macs == pytest.approx(4 * describe_model("resnet18").macs, rel=0.01)
    assert round(large.macs / 1e9, 2) == 1.81


def test_describe_model_counts_learnable_activation_parameters() -> None:
    info = describe_model("resnet20", act="tact")
    assert info.activation_sites == 19
    assert info.activation_parameters == 2 * 19
    assert info.options["shortcut"] == "A"
    assert describe_model("resnet20", act="relu").activation_parameters == 0


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


@pytest.mark.parametrize(("name", "options", "message"), [
    ("lenet5", {"image_size": 16}, "at least 28x28"),
    ("lenet5", {"depth": 3}, "has no option 'depth'; its options: pool"),
    ("resnet20", {"depth": 32}, "has no option 'depth'"),
    ("wrn", {"depth": 17}, "6n \\+ 4"),
    ("vgg16", {"dropout": 1.0}, "dropout must be in"),
    ("resnet18", {"stem": "huge"}, "stem must be one of auto, cifar, imagenet"),
    ("resnet20", {"shortcut": "C"}, "shortcut must be one of A, B, D"),
    ("densenet121", {"compression": 0}, "compression"),
    ("squeezenet", {"version": "2"}, "version must be one of 1_0, 1_1"),
    ("deep_cnn", {"depth": 0}, "depth must be positive"),
    ("resnet18", {"image_size": 16, "stem": "imagenet"}, "at least 32x32"),
])
def test_bad_model_arguments_fail_clearly(name, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(name, **options)


def test_models_doc_describes_every_model() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "models.md").read_text()
    missing = [name for name in MODELS if f"| {name} |" not in doc]
    assert not missing, f"docs/models.md lacks a table row for {missing}"


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(KeyError, match="unknown model 'resnet9000'"):
        build_model("resnet9000")
