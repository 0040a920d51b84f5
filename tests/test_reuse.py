"""A compiled model reused for a later run must behave exactly as a fresh build of that
run: same weights, buffers and learnable-activation parameters, same outputs in train and
eval mode, no trace of the earlier run's training (tensors, gradients)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actlab.inits import apply_init
from actlab.models import MODELS, build_model
from actlab.spec import RunSpec
from actlab.train import reuse
from actlab.train.engine import run_one
from test_engine import SYNTHETIC, comparable
from test_models import SIZES, SMALL


def initialized(name: str, act: str, seed: int) -> nn.Module:
    channels, size = SIZES[name][0]
    torch.manual_seed(seed)
    model = build_model(name, act=act, num_classes=5, in_channels=channels,
                        image_size=size, **SMALL.get(name, {}))
    model.init_report = apply_init(model, "he_normal", act, "matched")
    return model


def batch(name: str) -> torch.Tensor:
    channels, size = SIZES[name][0]
    return torch.randn(4, channels, size, size, generator=torch.Generator().manual_seed(7))


# Every model with a per-channel learnable activation (the most state to reset: weights,
# BatchNorm buffers and activation parameters at every site); the other kinds of
# activation on a few models of different structure.
RESET_CASES = [(name, "prelu(per_channel=True)") for name in MODELS] + [
    (name, act) for name in ("lenet5", "resnet20", "se_resnet18", "fixup_resnet20")
    for act in ("relu", "tact")]


@pytest.mark.parametrize(("name", "act"), RESET_CASES)
def test_reset_model_equals_a_fresh_build(name: str, act: str) -> None:
    x = batch(name)
    used = initialized(name, act, seed=1)
    optimizer = torch.optim.SGD(used.parameters(), lr=0.1)
    used.train()
    F.cross_entropy(used(x), torch.tensor([0, 1, 2, 3])).backward()
    optimizer.step()  # the earlier run trained: weights, BatchNorm statistics, AF params moved

    fresh = initialized(name, act, seed=2)
    assert reuse.reset_into(used, fresh)
    assert used.init_report == fresh.init_report
    assert all(p.grad is None for p in used.parameters())
    expected, got = fresh.state_dict(), used.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=key)
    for mode in (True, False):
        used.train(mode)
        fresh.train(mode)
        torch.manual_seed(3)  # the same dropout masks
        out_used = used(x)
        torch.manual_seed(3)
        torch.testing.assert_close(out_used, fresh(x), rtol=0, atol=0)


def test_a_different_structure_is_not_reset_into() -> None:
    wide = build_model("simple_cnn", in_channels=1, image_size=28)
    narrow = build_model("lenet5", in_channels=1, image_size=28)
    before = {k: v.clone() for k, v in wide.state_dict().items()}
    assert not reuse.reset_into(wide, narrow)
    assert all(torch.equal(before[k], v) for k, v in wide.state_dict().items())


@pytest.mark.slow
def test_a_worker_compiles_once_per_architecture_and_runs_stay_exact() -> None:
    """Two compiled runs of LeNet-5/ReLU with different seeds and initializers in one
    process: the second reuses the first's compiled model and gives exactly what it gives
    with nothing cached. (How much time that saves is measured in
    benchmarks/compile_reuse.py, not asserted here: torch's own compile cache can make a
    first compile fast when an earlier test compiled the same class.)"""
    def spec(seed: int, init: str) -> RunSpec:
        return RunSpec.model_validate({
            "model": "lenet5", "act": "relu", "init": init, "seed": seed, "data": SYNTHETIC,
            "train": {"epochs": 1, "batch_size": 32, "compile": True,
                      "optimizer": {"name": "sgd", "lr": 0.01}}})

    reuse.clear()
    first = run_one(spec(0, "he_normal"))
    second = run_one(spec(1, "xavier_normal"))
    compiled_models = len(reuse._compiled)
    reuse.clear()
    alone = run_one(spec(1, "xavier_normal"))
    reuse.clear()
    assert first.info["compile_reused"] is False
    assert alone.info["compile_reused"] is False
    assert second.info["compile_reused"] is True
    assert compiled_models == 1
    assert comparable(second) == comparable(alone)
    assert second.info["init_report"] == alone.info["init_report"]


@pytest.mark.slow
def test_every_architecture_compiles_past_dynamos_recompile_limit(monkeypatch) -> None:
    """Dynamo runs a class's forward eagerly once it has compiled recompile_limit graphs
    of it in a process (8 by default: a ninth activation of LeNet-5 in one worker). With
    the limit at 1, two activations in one worker must both compile; and where the limit
    is not raised, the second run must say it fell back to eager."""
    def spec(act: str) -> RunSpec:
        return RunSpec.model_validate({
            "model": "lenet5", "act": act, "init": "he_normal", "data": SYNTHETIC,
            "train": {"epochs": 1, "batch_size": 32, "compile": True,
                      "optimizer": {"name": "sgd", "lr": 0.01}}})

    try:
        with torch._dynamo.config.patch(recompile_limit=1):
            reuse.clear()
            torch._dynamo.reset()
            raised = [run_one(spec(act)) for act in ("relu", "tanh")]
        with torch._dynamo.config.patch(recompile_limit=1):
            reuse.clear()
            torch._dynamo.reset()
            monkeypatch.setattr(reuse, "allow_recompiles", lambda model_class: None)
            kept = [run_one(spec(act)) for act in ("relu", "tanh")]
    finally:
        reuse.clear()
        torch._dynamo.reset()
    assert [r.info["compile_reused"] for r in raised] == [False, False]
    assert not any("compile_fell_back" in r.info for r in raised)
    assert "compile_fell_back" not in kept[0].info
    assert kept[1].info["compile_fell_back"] is True
