"""The training core that every way of training shares: :func:`actlab.train.engine.run_one`
(one run), :func:`actlab.train.cohort.train_cohort` (runs stacked into one model) and
:func:`actlab.train.lr_find.lr_range_test` (the lr range test).

One setup (data on the device, the seeded and initialized model, bf16, torch.compile,
optimizer and schedule), one lr setter, one loss (autocast, label smoothing), one
optimizer step (gradient statistics, clipping, the activations' ``constrain()``), one
epoch record, one best-epoch tracker and one finish step, so that a change to any of
them reaches every caller. Progress goes to a :class:`RunObserver`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from actlab.activations import Activation, ActSpec, resolve_act
from actlab.data import DeviceData, Split, Splits, load_dataset, make_splits
from actlab.data.augment import Augmentation
from actlab.data.loader import corrupted
from actlab.inits import apply_init
from actlab.models import activation_sites, build_model, count_parameters
from actlab.schedules import Schedule, build_schedule
from actlab.spec import DataSpec, RunSpec
from actlab.train.environment import (
    autocast_for,
    configure_determinism,
    environment,
    peak_memory_mb,
    resolve_device,
    use_bf16,
)
from actlab.train.metrics import (
    confusion_matrix,
    loss_auc,
    macro_scores,
    time_to_fraction,
    topk_accuracy,
)
from actlab.train.monitors import GradientNorms
from actlab.train.optim import build_optimizer

log = logging.getLogger(__name__)

ParamValues = list[tuple[str, str, float]]  # (site, name, value)
LayerValues = list[tuple[str, str, float]]  # (layer, metric, value)


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    lr: float
    epoch_time: float
    images_per_s: float
    test_loss: float | None = None  # with train.test_each_epoch
    test_acc: float | None = None
    # CUDA: the epoch's peak allocated memory; CPU: the process's peak resident set so far.
    peak_memory_mb: float | None = None


@dataclass
class RunResult:
    status: str  # "completed" | "diverged"
    epochs: list[EpochMetrics]
    final: dict[str, Any] = field(default_factory=dict)
    diverged_epoch: int | None = None
    reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class RunObserver:
    """What a run reports while it trains; every method is optional (a no-op here).

    The executors subclass it to write the store and draw progress; the Ray executor's
    worker queues the events for its driver."""

    def epoch_finished(self, metrics: EpochMetrics) -> None:
        """An epoch ended: its metrics."""

    def params_recorded(self, epoch: int, values: ParamValues) -> None:
        """The learnable activations' values at initialization (0) and after each epoch."""

    def layers_recorded(self, epoch: int, values: LayerValues) -> None:
        """Per-layer measurements at initialization (0) and after each epoch."""

    def checkpoint_written(self, epoch: int) -> None:
        """The run can now resume after ``epoch``."""


class Diverged(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- data and model -----------------------------------------------------------------------
def prepare_splits(data: DataSpec) -> Splits:
    """The dataset of ``data`` (corrupted if asked), split and with its normalization."""
    dataset = load_dataset(data.name, data.data_dir, **data.options)
    if data.corruption is not None:
        c = data.corruption
        dataset = corrupted(dataset, c.kind, c.options(), c.apply_to, c.seed)
    return make_splits(dataset, data.val_fraction, data.train_per_class, data.test_per_class,
                       data.split_seed, data.mean, data.std)


def prepare_data(spec: RunSpec, device: torch.device) -> DeviceData:
    """The splits of ``spec`` on ``device`` in the run's memory format, with its
    augmentation. channels_last by default: measured faster for training on CPU and on
    CUDA (BENCHMARKS.md)."""
    splits = prepare_splits(spec.data)
    channels_last = spec.train.channels_last is not False
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    augment = spec.data.augment
    return DeviceData(splits, device, memory_format,
                      Augmentation(augment.crop_padding, augment.flip, augment.rotation))


def initialized_model(spec: RunSpec, data: DeviceData, act: ActSpec | None = None
                      ) -> nn.Module:
    """The model of ``spec`` built under its seed and initialized (data-dependent
    initializers such as LSUV see ``data``'s first training images)."""
    act = act or resolve_act(spec.act)
    splits = data.splits
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, act=act, num_classes=splits.num_classes,
                        in_channels=splits.train.images.shape[1],
                        image_size=splits.train.images.shape[-1], **spec.model_options)
    model = model.to(device=data.device, memory_format=data.memory_format)
    model.init_report = apply_init(model, spec.init, act, spec.gain,
                                   batch=data.example_batch())
    return model


def activation_parameters(model: nn.Module) -> ParamValues:
    """The tracked values of every learnable activation site, e.g.
    ``('features.1', 'alpha', 0.31)`` or the combination weights ``X``, ``Y``, ``Z``."""
    return [(site, name, value) for site, module in activation_sites(model).items()
            for name, value in module.tracked_values().items()]


def has_activation_parameters(model: nn.Module) -> bool:
    return any(True for module in activation_sites(model).values()
               for _ in module.parameters())


def constrained_activations(model: nn.Module) -> list[Activation]:
    """Activations with a domain (PELU's a, b >= 0.1), projected after every step."""
    return [m for m in model.modules() if isinstance(m, Activation)
            and type(m).constrain is not Activation.constrain]


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """Optimizer steps per epoch: a last batch of one image is dropped (BatchNorm cannot
    train on it)."""
    return max(1, train_size // batch_size + (train_size % batch_size >= 2))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The lr of every parameter group, scaled per group (activation parameters may have
    their own scale, ``optimizer.act_lr_scale``)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"]


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float
                        ) -> torch.Tensor:
    """Cross-entropy in float32 (logits may come out of bf16 autocast)."""
    return F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)


@dataclass
class Setup:
    """What a training needs, prepared once: ``model`` holds the weights and ``forward``
    runs it (the model itself, or its torch.compile wrapper)."""

    spec: RunSpec
    device: torch.device
    data: DeviceData
    model: nn.Module
    forward: Any
    bf16: bool
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    steps_per_epoch: int
    constrained: list[Activation]
    compile_info: dict[str, Any] = field(default_factory=dict)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.spec.train.epochs

    def lr_at(self, step: int) -> float:
        """The schedule's lr for optimizer step ``step`` (counted from 0)."""
        return self.schedule(step, self.total_steps, self.spec.train.optimizer.lr,
                             self.steps_per_epoch)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, lr: float,
                   gradients: GradientNorms | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step at ``lr`` on a batch; returns (loss, logits), not detached."""
        set_lr(self.optimizer, lr)
        with autocast_for(self.device, self.bf16):
            logits = self.forward(x)
            loss = classification_loss(logits, y, self.spec.train.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if gradients is not None:
            gradients.update()
        if self.spec.train.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.train.grad_clip)
        self.optimizer.step()
        for module in self.constrained:
            module.constrain()
        return loss, logits


def setup(spec: RunSpec, device: torch.device | None = None) -> Setup:
    """Data, model (compiled when ``train.compile``), optimizer and schedule of ``spec``."""
    from actlab.train.reuse import compiled_forward  # torch.compile only when asked

    device = device or resolve_device(spec.train.device)
    configure_determinism(spec.train.deterministic, device)
    data = prepare_data(spec, device)
    model = initialized_model(spec, data)
    bf16 = use_bf16(spec.train.precision, device)
    if bf16 and device.type == "cpu":
        log.warning("bf16 autocast on CPU was asked for; it measured 3-13x slower than fp32 "
                    "on these CPUs")
    model.actlab_bf16 = bf16
    forward, compile_info = model, {}
    if spec.train.compile:
        # A worker compiles each architecture once and resets its weights per run, so
        # the model that trains may be an earlier run's, holding this run's weights.
        model, forward, compile_info = compiled_forward(spec, model, data, bf16)
    return Setup(spec, device, data, model, forward, bf16,
                 build_optimizer(model, **spec.train.optimizer.model_dump()),
                 build_schedule(spec.train.schedule),
                 steps_per_epoch(len(data.train), spec.train.batch_size),
                 constrained_activations(model), compile_info)


def run_info(model: nn.Module, data: DeviceData, device: torch.device) -> dict[str, Any]:
    """What a run records about itself before it trains."""
    return {"parameters": count_parameters(model),
            "activation_sites": model.activation_site_count,
            "init_report": model.init_report, "train_size": len(data.train),
            "val_size": len(data.val), "test_size": len(data.test),
            "input_shape": list(data.splits.train.images.shape[1:]),
            "num_classes": data.splits.num_classes, "env": environment(device)}


# -- evaluation -----------------------------------------------------------------------------
@torch.no_grad()
def predict(model: nn.Module, data: DeviceData, split: Split, batch_size: int) -> torch.Tensor:
    """Logits of the whole split, in eval mode, in large no-grad batches (float32)."""
    model.eval()
    with autocast_for(data.device, getattr(model, "actlab_bf16", False)):
        return torch.cat([model(x).float() for x, _ in data.eval_batches(split, batch_size)])


def evaluate(model: nn.Module, data: DeviceData, split: Split, batch_size: int
             ) -> tuple[float, float]:
    """(mean loss, top-1 accuracy) on a split."""
    if len(split) == 0:
        return math.nan, math.nan
    logits = predict(model, data, split, batch_size)
    loss = F.cross_entropy(logits.float(), split.labels).item()
    return loss, (logits.argmax(1) == split.labels).float().mean().item()


def final_metrics(model: nn.Module, data: DeviceData, spec: RunSpec, prefix: str = "test_"
                  ) -> dict[str, Any]:
    """Test loss, top-1, top-k, macro precision/recall/F1 and the confusion matrix."""
    logits = predict(model, data, data.test, spec.train.eval_batch_size).float()
    labels = data.test.labels
    confusion = confusion_matrix(logits.argmax(1), labels, data.splits.num_classes)
    return {
        f"{prefix}loss": F.cross_entropy(logits, labels).item(),
        f"{prefix}acc": topk_accuracy(logits, labels, 1),
        f"{prefix}top{spec.train.top_k}": topk_accuracy(logits, labels, spec.train.top_k),
        **{f"{prefix}{k}": v for k, v in macro_scores(confusion).items()},
        "confusion" if prefix == "test_" else f"{prefix}confusion": confusion.tolist(),
    }


def curve_metrics(epochs: list[EpochMetrics]) -> dict[str, Any]:
    """Convergence summaries of the curves: time to 50/90/95/99% of the final validation
    accuracy (epochs and seconds) and the area under the training-loss curve."""
    val = [e.val_acc if e.val_acc is not None and math.isfinite(e.val_acc) else 0.0
           for e in epochs]
    return {**time_to_fraction(val, [e.epoch_time for e in epochs]),
            "train_loss_auc": loss_auc([e.train_loss for e in epochs])}


@dataclass
class EpochTraining:
    """An epoch's training totals, summed on the device (no sync per step)."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    seen: int = 0
    lr: float = 0.0
    started: float = field(default_factory=time.perf_counter)


def epoch_metrics(model: nn.Module, data: DeviceData, spec: RunSpec, epoch: int,
                  train_loss: float, train_acc: float, totals: EpochTraining,
                  train_time: float) -> EpochMetrics:
    """An epoch's record: its training numbers, validation (and with
    ``train.test_each_epoch`` test) loss and accuracy, time, throughput and memory."""
    val_loss, val_acc = evaluate(model, data, data.val, spec.train.eval_batch_size)
    test_loss, test_acc = (evaluate(model, data, data.test, spec.train.eval_batch_size)
                           if spec.train.test_each_epoch else (None, None))
    return EpochMetrics(
        epoch=epoch, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
        val_acc=val_acc, lr=totals.lr, epoch_time=time.perf_counter() - totals.started,
        images_per_s=totals.seen / train_time, test_loss=test_loss, test_acc=test_acc,
        peak_memory_mb=peak_memory_mb(data.device))


# -- divergence, model selection and the end of a run --------------------------------------
def loss_problem(train_loss: float, bound: float) -> str | None:
    """Why an epoch's mean training loss ends the run (None if it does not)."""
    if not math.isfinite(train_loss):
        return "non-finite training loss"
    if train_loss > bound:
        return f"training loss {train_loss:.3g} above the bound {bound:g}"
    return None


def chance_collapse(epochs: list[EpochMetrics], num_classes: int, patience: int) -> str | None:
    """Why the run collapsed to chance, or None: validation accuracy at most 1.1 x chance
    for the last ``patience`` epochs, after some epoch had exceeded 1.5 x chance (a run
    that never learned is slow, not diverged)."""
    if patience <= 0 or len(epochs) <= patience:
        return None
    chance = 1.0 / num_classes
    recent = [e.val_acc for e in epochs[-patience:]]
    earlier = [e.val_acc for e in epochs[:-patience]]
    if all(acc <= 1.1 * chance for acc in recent) and max(earlier) > 1.5 * chance:
        return (f"validation accuracy fell to chance ({chance:.3f}) for {patience} epochs "
                f"after reaching {max(earlier):.3f}")
    return None


Best = tuple[float, int, dict[str, torch.Tensor]]  # (val acc, epoch, weights or {} if last)


def update_best(best: Best | None, epoch: int, val_acc: float, model: nn.Module,
                last_epoch: int) -> Best | None:
    """Model selection on validation, never on test: keep the best epoch's weights (none
    for the last epoch: they are the model's own)."""
    if not math.isfinite(val_acc) or (best is not None and val_acc <= best[0]):
        return best
    return (val_acc, epoch, {} if epoch == last_epoch else
            {k: v.detach().clone() for k, v in model.state_dict().items()})


def diverged_result(spec: RunSpec, epochs: list[EpochMetrics], epoch: int, reason: str,
                    info: dict[str, Any], wall_time: float) -> RunResult:
    log.info("%s diverged in epoch %d: %s", spec.describe(), epoch, reason)
    info["wall_time"] = wall_time
    return RunResult("diverged", epochs, diverged_epoch=epoch, reason=reason, info=info)


def completed_result(spec: RunSpec, model: nn.Module, data: DeviceData,
                     epochs: list[EpochMetrics], best: Best | None, info: dict[str, Any],
                     started: float, elapsed_before: float = 0.0) -> RunResult:
    """The finish step of a run that trained to the end: test metrics of the last
    epoch's weights and of the best validation epoch's, convergence summaries, peak
    memory and wall time."""
    final = final_metrics(model, data, spec)
    final.update(curve_metrics(epochs))
    final["best_val_epoch"] = best[1] if best is not None else spec.train.epochs
    final["best_val_acc"] = best[0] if best is not None else epochs[-1].val_acc
    if best is not None and best[2]:  # an earlier epoch was best: test its weights too
        model.load_state_dict(best[2])
        final.update(final_metrics(model, data, spec, prefix="best_test_"))
    else:
        final.update({f"best_{k}": v for k, v in final.items() if k.startswith("test_")})
    # The run's peak: the highest epoch peak, or the final evaluation's if higher.
    final["peak_memory_mb"] = max([peak_memory_mb(data.device)] + [
        e.peak_memory_mb for e in epochs if e.peak_memory_mb is not None])
    info["wall_time"] = elapsed_before + time.perf_counter() - started
    return RunResult("completed", epochs, final=final, info=info)

