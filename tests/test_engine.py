import subprocess
import sys

import numpy as np
import pytest
import torch

from actlab.schedules import build_schedule
from actlab.spec import RunSpec
from actlab.train.core import EpochMetrics, chance_collapse
from actlab.train.engine import run_one
from actlab.train.metrics import (
    confusion_matrix,
    loss_auc,
    macro_scores,
    time_to_fraction,
    topk_accuracy,
)
from helpers import Callbacks

SYNTHETIC = {"name": "synthetic", "options": {"train_size": 400, "test_size": 200}}


def spec(**overrides) -> RunSpec:
    base = {"model": "lenet5", "act": "relu", "init": "he_normal", "seed": 0, "data": SYNTHETIC,
            "train": {"epochs": 2, "batch_size": 32, "optimizer": {"name": "sgd", "lr": 0.01}}}
    base.update(overrides)
    return RunSpec.model_validate(base)


def comparable(result) -> tuple:
    epochs = [(e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.lr) for e in result.epochs]
    final = {k: v for k, v in result.final.items()
             if k != "peak_memory_mb" and not k.startswith("seconds_to_")}
    return epochs, final


def test_training_learns_and_records_every_measurement() -> None:
    result = run_one(spec())
    assert result.status == "completed"
    assert len(result.epochs) == 2
    assert result.final["test_acc"] > 0.5  # chance is 0.1
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss
    for key in ("test_loss", "test_top3", "test_macro_precision", "test_macro_f1", "confusion"):
        assert key in result.final
    assert sum(map(sum, result.final["confusion"])) == 200
    assert result.info["parameters"] == 61_706
    assert result.info["activation_sites"] == 4
    assert result.info["env"]["torch"] == torch.__version__
    assert all(e.images_per_s > 0 and e.epoch_time > 0 for e in result.epochs)
    assert all(e.peak_memory_mb > 0 for e in result.epochs)


@pytest.mark.parametrize(("model", "options", "act", "init"), [
    ("resnet20", {"width": 8}, "mish", "he_normal"),
    ("mobilenetv2", {"width_mult": 0.25}, "tact", "lsuv"),
    ("se_resnet18", {"width": 8}, "prelu", "orthogonal"),
    ("densenet121", {"growth_rate": 4}, "silu", "xavier_normal"),
    ("fixup_resnet20", {"width": 8}, "relu", "fixup"),
])
def test_zoo_models_train_through_the_engine(model, options, act, init) -> None:
    data = {"name": "synthetic", "options": {"train_size": 160, "test_size": 40,
                                             "image_size": 32, "channels": 3}}
    result = run_one(spec(model=model, model_options=options, act=act, init=init, data=data,
                          train={"epochs": 1, "batch_size": 32,
                                 "optimizer": {"name": "sgd", "lr": 0.01}}))
    assert result.status == "completed", result.error
    assert np.isfinite(result.final["test_loss"])
    assert result.info["activation_sites"] > 0


def test_corrupted_and_augmented_data_through_the_engine() -> None:
    data = {"name": "synthetic", "options": {"train_size": 200, "test_size": 50,
                                             "channels": 3, "image_size": 16},
            "augment": "standard", "corruption": {"kind": "psi", "psi": 16}}
    noisy = spec(model="simple_cnn", data=data)
    clean = spec(model="simple_cnn", data={**data, "corruption": None, "augment": "none"})
    assert noisy.run_id != clean.run_id
    assert noisy.data.corruption.label == "shot_noise_psi(psi=16)"
    first, second = run_one(noisy), run_one(noisy)
    assert first.status == "completed"
    assert comparable(first) == comparable(second)  # augmentation and noise are seeded


def test_same_spec_gives_identical_metrics() -> None:
    assert comparable(run_one(spec(act="mish"))) == comparable(run_one(spec(act="mish")))


def test_different_seeds_differ() -> None:
    assert comparable(run_one(spec(seed=0))) != comparable(run_one(spec(seed=1)))


def test_huge_learning_rate_is_detected_as_divergence() -> None:
    result = run_one(spec(train={"epochs": 3, "batch_size": 32,
                                 "optimizer": {"name": "sgd", "lr": 100.0}}))
    assert result.status == "diverged"
    assert result.diverged_epoch == 1
    assert "loss" in result.reason
    assert result.final == {}


def epochs_with(val_accs: list[float]) -> list[EpochMetrics]:
    return [EpochMetrics(epoch=i + 1, train_loss=1.0, train_acc=0.5, val_loss=1.0, val_acc=a,
                         lr=0.1, epoch_time=1.0, images_per_s=1.0)
            for i, a in enumerate(val_accs)]


@pytest.mark.parametrize(("accs", "patience", "collapsed"), [
    ([0.6, 0.1, 0.1, 0.1], 3, True),       # learned, then chance for 3 epochs
    ([0.6, 0.1, 0.1], 3, False),           # not yet 3 epochs
    ([0.1, 0.1, 0.1, 0.1, 0.1], 3, False),  # never learned: slow, not diverged
    ([0.6, 0.1, 0.5, 0.1, 0.1], 3, False),  # recovered in between
    ([0.6, 0.1, 0.1, 0.1], 0, False),      # disabled
])
def test_chance_collapse(accs, patience: int, collapsed: bool) -> None:
    reason = chance_collapse(epochs_with(accs), 10, patience)
    assert (reason is not None) == collapsed
    if collapsed:
        assert "fell to chance" in reason


def test_rmsprop_grad_clip_and_label_smoothing_train() -> None:
    result = run_one(spec(train={"epochs": 2, "batch_size": 32, "grad_clip": 1.0,
                                 "label_smoothing": 0.1,
                                 "optimizer": {"name": "rmsprop", "lr": 0.001}}))
    assert result.status == "completed"
    assert result.final["test_acc"] > 0.5
    plain = spec(train={"epochs": 2, "batch_size": 32, "optimizer": {"name": "rmsprop",
                                                                     "lr": 0.001}})
    # New training options at their defaults leave the run id of older specs unchanged.
    assert "grad_clip" not in plain.identity()["train"]


def test_cosine_schedule_reaches_its_floor() -> None:
    result = run_one(spec(train={"epochs": 2, "batch_size": 32, "schedule": "cosine",
                                 "optimizer": {"name": "adam", "lr": 1e-3}}))
    assert result.epochs[0].lr < 1e-3
    assert result.epochs[-1].lr < 1e-5


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (50, 0.5 * (1 + np.cos(np.pi / 2))),
                                                (100, 0.0)])
def test_cosine_matches_its_formula(step: int, expected: float) -> None:
    assert build_schedule("cosine")(step, 100, 1.0) == pytest.approx(expected)
    assert build_schedule("fixed")(step, 100, 0.3) == 0.3


def test_cosine_warmup_is_linear() -> None:
    schedule = build_schedule("cosine(warmup_steps=10)")
    assert [schedule(s, 100, 1.0) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])


def test_metrics_equal_independent_computation() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(500, 5))
    labels = rng.integers(0, 5, size=500)
    logits[np.arange(250), labels[:250]] += 2.0  # some signal
    t_logits, t_labels = torch.from_numpy(logits), torch.from_numpy(labels)
    order = np.argsort(-logits, axis=1)
    for k in (1, 3):
        expected = np.mean([labels[i] in order[i, :k] for i in range(500)])
        assert topk_accuracy(t_logits, t_labels, k) == pytest.approx(expected)
    predictions = logits.argmax(1)
    confusion = np.zeros((5, 5), int)
    for truth, guess in zip(labels, predictions, strict=True):
        confusion[truth, guess] += 1
    got = confusion_matrix(torch.from_numpy(predictions), t_labels, 5)
    np.testing.assert_array_equal(got.numpy(), confusion)
    precision = [np.mean(labels[predictions == c] == c) for c in range(5)]
    recall = [np.mean(predictions[labels == c] == c) for c in range(5)]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall, strict=True)]
    scores = macro_scores(got)
    assert scores["macro_precision"] == pytest.approx(np.mean(precision))
    assert scores["macro_recall"] == pytest.approx(np.mean(recall))
    assert scores["macro_f1"] == pytest.approx(np.mean(f1))


def test_never_predicted_class_has_zero_precision() -> None:
    confusion = torch.tensor([[5, 0], [5, 0]])
    assert macro_scores(confusion)["macro_precision"] == pytest.approx(0.25)


def test_time_to_fraction_and_loss_auc_by_hand() -> None:
    values = [0.2, 0.5, 0.8, 0.9, 1.0]
    seconds = [2.0, 2.0, 3.0, 1.0, 1.0]
    result = time_to_fraction(values, seconds)
    # 50% of 1.0 first at epoch 2 (4 s), 90% at epoch 4 (8 s), 95% and 99% at epoch 5.
    assert (result["epochs_to_50"], result["seconds_to_50"]) == (2, 4.0)
    assert (result["epochs_to_90"], result["seconds_to_90"]) == (4, 8.0)
    assert (result["epochs_to_95"], result["epochs_to_99"]) == (5, 5)
    assert time_to_fraction([0.0, 0.0], [1.0, 1.0])["epochs_to_50"] is None
    assert loss_auc([2.0, 1.0, 0.5]) == 3.5


def test_best_validation_epoch_and_its_test_metrics() -> None:
    result = run_one(spec(train={"epochs": 4, "batch_size": 32, "test_each_epoch": True,
                                 "optimizer": {"name": "sgd", "lr": 0.01}}))
    val = [e.val_acc for e in result.epochs]
    best = val.index(max(val)) + 1
    assert result.final["best_val_epoch"] == best
    assert result.final["best_val_acc"] == max(val)
    # With test_each_epoch, the test accuracy of the best epoch is known independently.
    assert result.final["best_test_acc"] == pytest.approx(result.epochs[best - 1].test_acc)
    assert result.epochs[-1].test_acc == pytest.approx(result.final["test_acc"])
    assert result.final["epochs_to_50"] >= 1
    assert result.final["train_loss_auc"] == pytest.approx(
        sum(e.train_loss for e in result.epochs))


def test_layer_measurements_are_reported_per_epoch() -> None:
    seen: dict[int, list] = {}
    run_one(spec(train={"epochs": 2, "batch_size": 32, "grad_stats": True,
                        "optimizer": {"name": "sgd", "lr": 0.01}}),
            Callbacks(layers=lambda epoch, values: seen.__setitem__(epoch, values)))
    assert sorted(seen) == [0, 1, 2]
    metrics = {(layer, metric) for layer, metric, _ in seen[1]}
    weighted = {"features.0", "features.3", "classifier.1", "classifier.3", "classifier.5"}
    assert {layer for layer, metric in metrics if metric == "weight_std"} == weighted
    assert {layer for layer, metric in metrics if metric == "grad_norm"} == weighted
    assert {layer for layer, metric in metrics if metric == "dead_fraction"} == {
        "features.1", "features.4", "classifier.2", "classifier.4"}
    assert all(value >= 0 for _, metric, value in seen[1] if metric != "weight_mean")
    # He-normal at init: std = sqrt(2 / fan_in) on the first conv (fan_in 25).
    std0 = {(layer, m): v for layer, m, v in seen[0]}[("features.0", "weight_std")]
    assert std0 == pytest.approx((2 / 25) ** 0.5, rel=0.15)


def test_bf16_autocast_runs_and_is_an_execution_setting() -> None:
    fp32 = spec()
    bf16 = spec(train={"epochs": 1, "batch_size": 32, "precision": "bf16",
                       "optimizer": {"name": "sgd", "lr": 0.01}})
    assert bf16.run_id == spec(train={"epochs": 1, "batch_size": 32,
                                      "optimizer": {"name": "sgd", "lr": 0.01}}).run_id
    assert fp32.train.precision == "auto"
    result = run_one(bf16)
    assert result.status == "completed"
    assert np.isfinite(result.final["test_loss"])


@pytest.mark.slow
def test_torch_compile_trains_to_the_same_kind_of_result() -> None:
    result = run_one(spec(train={"epochs": 1, "batch_size": 32, "compile": True,
                                 "optimizer": {"name": "sgd", "lr": 0.01}}))
    assert result.status == "completed"
    assert result.info["parameters"] == 61_706
    # Compiling is timed on its own, before epoch 1 (whose time it would otherwise swamp).
    assert result.info["compile_s"] > 0


PEAKS_OF_A_LARGE_THEN_A_SMALL_RUN = """
from actlab.spec import RunSpec
from actlab.train.engine import run_one

def run(model, batch, size):
    return run_one(RunSpec.model_validate({
        "model": model, "act": "relu", "init": "he_normal", "seed": 0,
        "data": {"name": "synthetic", "options": {
            "train_size": 2 * batch, "test_size": 64, "image_size": size, "channels": 3}},
        "train": {"epochs": 1, "batch_size": batch, "eval_batch_size": batch}})
    ).final["peak_memory_mb"]

print(run("simple_cnn", 512, 32), run("lenet5", 8, 28))  # a few hundred MiB, then little
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-run peak needs /proc")
def test_peak_memory_is_each_runs_own_in_a_long_lived_worker() -> None:
    """A worker process trains many runs: a small run after a large one must report its
    own peak, not the process's (a CPU run used to report the process's lifetime peak).
    In a fresh process, as a worker starts: in this one, memory that earlier tests freed
    but the allocator kept would count as resident in both runs."""
    out = subprocess.run([sys.executable, "-c", PEAKS_OF_A_LARGE_THEN_A_SMALL_RUN],
                         capture_output=True, text=True, check=True).stdout.split()
    large, small = float(out[-2]), float(out[-1])
    assert small < large - 100
