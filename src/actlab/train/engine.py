"""The training engine: ``run_one(spec) -> RunResult``.

The loop is deliberately short: the lr comes from a pure schedule function, batches come
normalized from device memory, and per-batch statistics stay on the device as running
sums, so the loop adds nothing measurable to a hand-written PyTorch loop (benchmarks/).
Divergence (a non-finite loss, or a mean epoch loss above ``train.loss_bound``) ends the
run as ``diverged`` with its epoch and reason; the curves up to that point are kept.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import actlab
from actlab.activations import Activation
from actlab.data import DeviceData, Split, Splits, load_dataset, make_splits
from actlab.data.augment import Augmentation
from actlab.data.loader import corrupted
from actlab.inits import apply_init
from actlab.models import activation_sites, build_model, count_parameters
from actlab.study.spec import DataSpec, RunSpec
from actlab.train.checkpoint import (
    load_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from actlab.train.metrics import (
    confusion_matrix,
    loss_auc,
    macro_scores,
    time_to_fraction,
    topk_accuracy,
)
from actlab.train.monitors import (
    GradientNorms,
    LayerValues,
    dead_unit_fractions,
    weight_statistics,
)
from actlab.train.optim import build_optimizer
from actlab.train.reuse import architecture_key, compiled_model, graph_count
from actlab.train.schedules import build_schedule

log = logging.getLogger(__name__)

#: How often (in steps) the loop looks at the loss to stop a diverging run early.
DIVERGENCE_CHECK_EVERY = 50


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


class Diverged(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is available; "
                           "use device: auto or cpu")
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the actlab source tree, when it is a git checkout (looked up once)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(actlab.__file__).parent,
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: torch.device) -> dict[str, Any]:
    """How a run was made: versions, commit, device, threads."""
    return {
        "actlab": actlab.__version__, "git_commit": git_commit(), "torch": torch.__version__,
        "python": platform.python_version(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "host": platform.node(),
    }


# What decides a run's numbers to the last bit (the host and Python version do not): a
# run resumed where any of these differ is not bit-identical to an uninterrupted run.
RESULT_ENVIRONMENT = ("actlab", "git_commit", "torch", "device", "device_name", "threads")


def environment_changes(before: dict[str, Any], now: dict[str, Any]) -> dict[str, list]:
    """``{key: [before, now]}`` for each of :data:`RESULT_ENVIRONMENT` that differs."""
    return {key: [before.get(key), now.get(key)] for key in RESULT_ENVIRONMENT
            if before.get(key) != now.get(key)}


PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory(device: torch.device) -> None:
    """Start a new window for :func:`peak_memory_mb`: CUDA's peak-allocation counter, or
    on Linux the process's peak resident set (writing 5 to /proc/self/clear_refs resets
    VmHWM, Linux 4.0+), so a worker that trains many runs reports each epoch's own peak."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    # Not Linux, or not allowed: the peak then counts from the process's start.
    with contextlib.suppress(OSError):
        PROC_CLEAR_REFS.write_text("5")


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory since the last :func:`reset_peak_memory`: CUDA's peak allocation, or
    the process's peak resident set on CPU (VmHWM; elsewhere ru_maxrss, the peak since
    the process started)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # KiB
    except OSError:
        pass
    # ru_maxrss is the process's peak resident set, in KiB on Linux and bytes on macOS.
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def run_peak_memory_mb(epochs: list[EpochMetrics], device: torch.device) -> float:
    """The run's peak: the highest epoch peak, or the final evaluation's if higher."""
    return max([peak_memory_mb(device)]
               + [e.peak_memory_mb for e in epochs if e.peak_memory_mb is not None])


ParamValues = list[tuple[str, str, float]]  # (site, name, value)


def activation_parameters(model: nn.Module) -> ParamValues:
    """The tracked values of every learnable activation site, e.g.
    ``('features.1', 'alpha', 0.31)`` or the combination weights ``X``, ``Y``, ``Z``."""
    return [(site, name, value) for site, module in activation_sites(model).items()
            for name, value in module.tracked_values().items()]


@torch.no_grad()
def predict(model: nn.Module, data: DeviceData, split: Split, batch_size: int) -> torch.Tensor:
    """Logits of the whole split, in eval mode, in large no-grad batches (float32)."""
    model.eval()
    with autocast_for(data.device, getattr(model, "actlab_bf16", False)):
        return torch.cat([model(x).float() for x, _ in data.eval_batches(split, batch_size)])


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast: on for CUDA under ``auto``, or when asked."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast_for(device: torch.device, enabled: bool) -> Any:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def configure_determinism(deterministic: bool, device: torch.device) -> None:
    """CPU kernels are deterministic; on CUDA, cuDNN autotuning picks kernels per run and
    some kernels use atomics, so exact repeats need ``train.deterministic`` (slower)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic


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


def prepare_splits(data: DataSpec) -> Splits:
    """The dataset of ``data`` (corrupted if asked), split and with its normalization."""
    dataset = load_dataset(data.name, data.data_dir, **data.options)
    if data.corruption is not None:
        c = data.corruption
        dataset = corrupted(dataset, c.kind, c.options(), c.apply_to, c.seed)
    return make_splits(dataset, data.val_fraction, data.train_per_class, data.test_per_class,
                       data.split_seed, data.mean, data.std)


def prepare(spec: RunSpec, device: torch.device) -> tuple[DeviceData, nn.Module]:
    """Data on ``device`` and the seeded, initialized model for ``spec``."""
    data = prepare_data(spec, device)
    return data, initialized_model(spec, data)


def prepare_data(spec: RunSpec, device: torch.device) -> DeviceData:
    """The splits of ``spec`` on ``device`` in the run's memory format, with its
    augmentation."""
    splits = prepare_splits(spec.data)
    channels_last = spec.train.channels_last
    if channels_last is None:  # measured faster for training on CPU and on CUDA (GUIDE §7)
        channels_last = True
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    augment = spec.data.augment
    return DeviceData(splits, device, memory_format,
                      Augmentation(augment.crop_padding, augment.flip, augment.rotation))


def initialized_model(spec: RunSpec, data: DeviceData) -> nn.Module:
    """The model of ``spec`` built under its seed and initialized (data-dependent
    initializers such as LSUV see ``data``'s first training images)."""
    splits = data.splits
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, act=spec.act, num_classes=splits.num_classes,
                        in_channels=splits.train.images.shape[1],
                        image_size=splits.train.images.shape[-1],
                        **spec.model_options)
    model = model.to(device=data.device, memory_format=data.memory_format)
    model.init_report = apply_init(model, spec.init, spec.act, spec.gain,
                                   batch=data.example_batch())
    return model


def write_checkpoint(path: Path, state: dict[str, Any]) -> Path | None:
    """Write a checkpoint; where the disk refuses (full, size limit), warn and go on
    without checkpoints (the run itself is fine; only its resume point is lost)."""
    try:
        save_checkpoint(path, state)
    except (OSError, RuntimeError) as exc:
        log.warning("could not write the checkpoint %s (%s); this run continues without "
                    "checkpoints and would restart from scratch if interrupted", path, exc)
        return None
    return path


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


def activation_parameter_tensors(model: nn.Module):
    for module in activation_sites(model).values():
        yield from module.parameters()


def compile_warmup(forward: nn.Module, model: nn.Module, data: DeviceData, bf16: bool,
                   batch_size: int) -> float:
    """Compile ``forward`` (a ``torch.compile`` wrapper of ``model``) for training with
    one forward + backward pass on a training batch of the run's size and one of the
    epoch's last batch size (each size compiles a graph), and return the seconds it took, so
    the compile time is reported on its own instead of inflating epoch 1.

    The pass leaves no trace: BatchNorm running statistics are restored and the gradients
    dropped (no optimizer step is taken); it draws dropout masks from the global random
    stream, as any compiled run's first step would."""
    saved = {name: buffer.clone() for name, buffer in model.named_buffers()}
    # An epoch's last, shorter batch would otherwise compile a second graph inside epoch 1.
    sizes = [min(batch_size, len(data.train))]
    if len(data.train) % batch_size >= 2 and len(data.train) > batch_size:
        sizes.append(len(data.train) % batch_size)
    start = time.perf_counter()
    model.train()
    for size in sizes:
        x = data.normalize(data.train.images[:size])
        with autocast_for(data.device, bf16):
            logits = forward(x)
        logits.float().logsumexp(1).mean().backward()
    if data.device.type == "cuda":
        torch.cuda.synchronize(data.device)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            buffer.copy_(saved[name])
    model.zero_grad(set_to_none=True)
    return seconds


def run_one(spec: RunSpec, on_epoch: Callable[[EpochMetrics], None] | None = None,
            device: torch.device | None = None,
            on_params: Callable[[int, ParamValues], None] | None = None,
            on_layers: Callable[[int, LayerValues], None] | None = None,
            checkpoint: Path | None = None, resume_epoch: int = 0,
            on_checkpoint: Callable[[int], None] | None = None,
            keep_checkpoint: bool = False) -> RunResult:
    """Train one run to completion (or divergence) and measure it.

    ``on_epoch`` receives each epoch's metrics as the epoch ends; ``on_params`` receives
    the learnable activation parameters and ``on_layers`` the per-layer measurements, at
    initialization (epoch 0) and after each epoch.

    With ``checkpoint``, the full training state is written there after every epoch
    (then ``on_checkpoint(epoch)`` is called) and, if the file holds epoch
    ``resume_epoch`` of this run, training resumes from it exactly. The file is removed
    when the run ends unless ``keep_checkpoint``.
    """
    device = device or resolve_device(spec.train.device)
    started = time.perf_counter()
    configure_determinism(spec.train.deterministic, device)
    data, model = prepare(spec, device)
    bf16 = use_bf16(spec.train.precision, device)
    if bf16 and device.type == "cpu":
        log.warning("bf16 autocast on CPU was asked for; it measured 3-13x slower than fp32 "
                    "on these CPUs")
    model.actlab_bf16 = bf16
    # torch.compile wraps the module; weights, state and measurements stay on ``model``.
    # A worker compiles each architecture once and resets its weights per run (reuse.py).
    forward, compile_reused, compile_s, compile_fell_back = model, None, None, False
    if spec.train.compile:
        key = architecture_key(spec, tuple(data.splits.train.images.shape[1:]),
                               data.splits.num_classes, device, data.memory_format)
        model, forward, compile_reused = compiled_model(key, model)  # keeps actlab_bf16
        graphs_before = graph_count()
        compile_s = compile_warmup(forward, model, data, bf16, spec.train.batch_size)
        # A fresh compile that added no graph runs eagerly (dynamo gave up on it).
        compile_fell_back = not compile_reused and graph_count() == graphs_before
        if compile_fell_back:
            log.warning("%s: torch.compile produced no graph (see torch's log above); the "
                        "run trains eagerly and is recorded as compile_fell_back",
                        spec.describe())
    optimizer = build_optimizer(model, **spec.train.optimizer.model_dump())
    schedule = build_schedule(spec.train.schedule)
    base_lr = spec.train.optimizer.lr
    batch_size = spec.train.batch_size
    steps_per_epoch = max(1, len(data.train) // batch_size
                          + (len(data.train) % batch_size >= 2))
    total_steps = steps_per_epoch * spec.train.epochs
    generator = torch.Generator().manual_seed(spec.seed)
    info = {"parameters": count_parameters(model),
            "activation_sites": model.activation_site_count,
            "init_report": model.init_report, "train_size": len(data.train),
            "val_size": len(data.val), "test_size": len(data.test),
            "input_shape": list(data.splits.train.images.shape[1:]),
            "num_classes": data.splits.num_classes, "env": environment(device)}
    if compile_s is not None:
        info["compile_s"] = compile_s  # paid before epoch 1, so not in its time
        info["compile_reused"] = compile_reused  # True: an earlier run's graph, warm
        if compile_fell_back:
            info["compile_fell_back"] = True
    epochs: list[EpochMetrics] = []
    step = 0
    # Activations with a domain (PELU's a, b >= 0.1) are projected after every step.
    constrained = [m for m in model.modules() if isinstance(m, Activation)
                   and type(m).constrain is not Activation.constrain]
    tracks_params = on_params is not None and any(True for _ in activation_parameter_tensors(model))
    if tracks_params:
        on_params(0, activation_parameters(model))
    probe = data.example_batch(256)  # fixed images for dead-unit counts
    gradients = GradientNorms(model) if spec.train.grad_stats else None

    def layer_values() -> LayerValues:
        values = weight_statistics(model) + dead_unit_fractions(model, probe)
        return values + (gradients.values() if gradients is not None else [])

    best: tuple[float, int, dict[str, torch.Tensor]] | None = None  # (val acc, epoch, state)
    first_epoch, elapsed_before = 1, 0.0
    resumed = load_checkpoint(checkpoint, spec.run_id, resume_epoch) if checkpoint else None
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        restore_rng_states(generator, resumed["rng"])
        step, best = resumed["step"], resumed["best"]
        epochs = [EpochMetrics(**e) for e in resumed["epochs"]]
        first_epoch, elapsed_before = resumed["epoch"] + 1, resumed["elapsed"]
        info["resumed_from_epoch"] = resumed["epoch"]
        log.info("%s resumes after epoch %d", spec.describe(), resumed["epoch"])
        # Checkpoints from before the environment was saved in them have no "env".
        changes = environment_changes(resumed["env"], info["env"]) if "env" in resumed else {}
        env_changes = resumed.get("env_changes", []) + (
            [{"after_epoch": resumed["epoch"], "changes": changes}] if changes else [])
        if changes:
            log.warning("%s resumes after epoch %d in another environment (%s): its numbers "
                        "will not be bit-identical to an uninterrupted run's", spec.describe(),
                        resumed["epoch"], "; ".join(f"{key} {old} -> {new}"
                                                    for key, (old, new) in changes.items()))
        if env_changes:
            info["resumed_env_changes"] = env_changes
    elif on_layers is not None and spec.train.layer_stats:
        on_layers(0, layer_values())
    for epoch in range(first_epoch, spec.train.epochs + 1):
        model.train()
        reset_peak_memory(device)
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        lr = base_lr
        try:
            for x, y in data.train_batches(batch_size, generator):
                lr = schedule(step, total_steps, base_lr, steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group["lr_scale"]
                with autocast_for(device, bf16):
                    logits = forward(x)
                    loss = F.cross_entropy(logits.float(), y,
                                           label_smoothing=spec.train.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if gradients is not None:
                    gradients.update()
                if spec.train.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), spec.train.grad_clip)
                optimizer.step()
                for module in constrained:
                    module.constrain()
                loss_sum += loss.detach() * len(y)
                correct += (logits.detach().argmax(1) == y).sum()
                seen += len(y)
                step += 1
                if step % DIVERGENCE_CHECK_EVERY == 0 and not torch.isfinite(loss):
                    raise Diverged(f"non-finite training loss at step {step}")
            train_loss = loss_sum.item() / seen
            if not math.isfinite(train_loss):
                raise Diverged("non-finite training loss")
            if train_loss > spec.train.loss_bound:
                raise Diverged(f"training loss {train_loss:.3g} above the bound "
                               f"{spec.train.loss_bound:g}")
        except Diverged as signal:
            log.info("%s diverged in epoch %d: %s", spec.describe(), epoch, signal.reason)
            info["wall_time"] = elapsed_before + time.perf_counter() - started
            if checkpoint is not None and not keep_checkpoint:
                checkpoint.unlink(missing_ok=True)
            return RunResult("diverged", epochs, diverged_epoch=epoch, reason=signal.reason,
                             info=info)
        train_time = time.perf_counter() - epoch_start
        val_loss, val_acc = evaluate(model, data, data.val, spec.train.eval_batch_size)
        test_loss, test_acc = (evaluate(model, data, data.test, spec.train.eval_batch_size)
                               if spec.train.test_each_epoch else (None, None))
        metrics = EpochMetrics(
            epoch=epoch, train_loss=train_loss, train_acc=correct.item() / seen,
            val_loss=val_loss, val_acc=val_acc, lr=lr,
            epoch_time=time.perf_counter() - epoch_start, images_per_s=seen / train_time,
            test_loss=test_loss, test_acc=test_acc, peak_memory_mb=peak_memory_mb(device),
        )
        epochs.append(metrics)
        if on_epoch is not None:
            on_epoch(metrics)
        if tracks_params:
            on_params(epoch, activation_parameters(model))
        if on_layers is not None and spec.train.layer_stats:
            on_layers(epoch, layer_values())
        if gradients is not None:
            gradients.reset()
        # Model selection on validation, never on test: keep the best epoch's weights.
        if math.isfinite(val_acc) and (best is None or val_acc > best[0]):
            last = epoch == spec.train.epochs  # the last epoch's weights are the model's
            best = (val_acc, epoch, {} if last else
                    {k: v.detach().clone() for k, v in model.state_dict().items()})
        if checkpoint is not None and epoch < spec.train.epochs:
            checkpoint = write_checkpoint(checkpoint, {
                "run_id": spec.run_id, "epoch": epoch, "step": step,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "rng": rng_states(generator), "best": best,
                "epochs": [asdict(e) for e in epochs],
                "elapsed": elapsed_before + time.perf_counter() - started,
                "env": info["env"], "env_changes": info.get("resumed_env_changes", []),
            })
            if checkpoint is not None and on_checkpoint is not None:
                on_checkpoint(epoch)
        collapse = chance_collapse(epochs, data.splits.num_classes, spec.train.chance_epochs)
        if collapse:
            log.info("%s diverged in epoch %d: %s", spec.describe(), epoch, collapse)
            info["wall_time"] = elapsed_before + time.perf_counter() - started
            if checkpoint is not None and not keep_checkpoint:
                checkpoint.unlink(missing_ok=True)
            return RunResult("diverged", epochs, diverged_epoch=epoch, reason=collapse,
                             info=info)
    final = final_metrics(model, data, spec)
    final.update(curve_metrics(epochs))
    final["best_val_epoch"] = best[1] if best is not None else spec.train.epochs
    final["best_val_acc"] = best[0] if best is not None else epochs[-1].val_acc
    if best is not None and best[2]:  # an earlier epoch was best: test its weights too
        model.load_state_dict(best[2])
        final.update(final_metrics(model, data, spec, prefix="best_test_"))
    else:
        final.update({f"best_{k}": v for k, v in final.items()
                      if k.startswith("test_")})
    final["peak_memory_mb"] = run_peak_memory_mb(epochs, device)
    info["wall_time"] = elapsed_before + time.perf_counter() - started
    if checkpoint is not None and not keep_checkpoint:
        checkpoint.unlink(missing_ok=True)
    return RunResult("completed", epochs, final=final, info=info)
