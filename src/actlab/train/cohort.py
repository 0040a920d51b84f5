"""Cohort training: several runs of one model and activation (different seeds or
initializers) trained as one stacked model.

The members' weights are stacked along a new leading dimension
(``torch.func.stack_module_state``) and one step runs all of them through
``torch.func.vmap`` over ``functional_call``: vmap turns the members' convolutions into
one batched (grouped) convolution, so a GPU that a single small model leaves mostly idle
does all members' work in one kernel launch per layer. Each member keeps its own batch
order and augmentation (its seed's generator), its own BatchNorm running statistics (the
stacked buffers are updated in place, per member) and, since SGD, Adam, AdamW and
RMSprop update every element independently, its own optimizer state: a cohort computes
what the separate runs compute, up to floating-point rounding (tests/test_cohort.py).

What a cohort cannot do, and refuses up front: members that differ in anything but the
seed and the initializer (they would need different graphs or schedules),
``torch.compile``, gradient clipping and per-step gradient statistics (both need each
member's own global norm), activations that project their parameters after every step
(PELU), and checkpoints (an interrupted cohort is run again from the start). Dropout
masks are drawn per member but from vmap's random stream, so models with dropout agree
with separate runs in distribution, not bit for bit.

On CPU vmap measured slower than running the members one after another
(BENCHMARKS.md), so cohorts are opt-in (``actlab run --cohort N``).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from actlab.activations import ACTIVATIONS, Activation, resolve_act
from actlab.models import count_parameters
from actlab.study.spec import RunSpec
from actlab.train.engine import (
    EpochMetrics,
    RunResult,
    activation_parameter_tensors,
    activation_parameters,
    autocast_for,
    chance_collapse,
    configure_determinism,
    curve_metrics,
    environment,
    evaluate,
    final_metrics,
    initialized_model,
    peak_memory_mb,
    prepare_data,
    reset_peak_memory,
    resolve_device,
    run_peak_memory_mb,
    use_bf16,
)
from actlab.train.monitors import dead_unit_fractions, weight_statistics
from actlab.train.optim import build_optimizer
from actlab.train.schedules import build_schedule

log = logging.getLogger(__name__)

#: The fields in which the members of a cohort may differ.
MEMBER_FIELDS = ("seed", "init", "gain")


class CohortError(ValueError):
    """Runs that cannot train together as one cohort (the message says why)."""


def cohort_key(spec: RunSpec) -> str:
    """Equal for runs that may share a cohort: everything but seed, init and gain."""
    return spec.model_dump_json(exclude=set(MEMBER_FIELDS))


def cohort_refusal(spec: RunSpec) -> str | None:
    """Why ``spec`` cannot be a cohort member at all, or None."""
    train = spec.train
    act = ACTIVATIONS.entry(resolve_act(spec.act).name).factory
    if getattr(act, "constrain", Activation.constrain) is not Activation.constrain:
        return f"{spec.act} projects its parameters after every step"
    if train.compile:
        return "train.compile is on (a cohort is compiled as a whole, not supported)"
    if train.grad_clip is not None:
        return "train.grad_clip needs each member's own gradient norm"
    if train.grad_stats:
        return "train.grad_stats measures one model's gradients per step"
    return None


def check_cohort(specs: list[RunSpec]) -> None:
    """Raise ``CohortError`` unless ``specs`` can train as one cohort."""
    if not specs:
        raise CohortError("a cohort needs at least one run")
    for spec in specs:
        if (reason := cohort_refusal(spec)) is not None:
            raise CohortError(f"{spec.describe()} cannot join a cohort: {reason}")
    key = cohort_key(specs[0])
    for spec in specs[1:]:
        if cohort_key(spec) != key:
            raise CohortError(f"{spec.describe()} and {specs[0].describe()} differ in more "
                              f"than {', '.join(MEMBER_FIELDS)}: they cannot share a cohort")
    if len({spec.run_id for spec in specs}) != len(specs):
        raise CohortError("a cohort lists the same run twice")


#: Optimizer state tensors per parameter (SGD keeps a momentum buffer, Adam two moments).
OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2, "rmsprop": 2}


def member_memory_mb(spec: RunSpec) -> float:
    """Memory one cohort member needs on the device, in MiB: its weights, gradients and
    optimizer state, plus the activations one training batch keeps for the backward pass
    (counted exactly, through autograd's saved-tensor hooks on a CPU forward pass at the
    run's batch size and input shape: no device is needed to size a cohort)."""
    from actlab.models import build_model
    from actlab.train.engine import prepare_splits

    splits = prepare_splits(spec.data)
    shape = tuple(splits.train.images.shape[1:])
    model = build_model(spec.model, act=spec.act, num_classes=splits.num_classes,
                        in_channels=shape[0], image_size=shape[-1], **spec.model_options)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    states = OPTIMIZER_STATES.get(spec.train.optimizer.name, 2)
    saved = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    x = torch.zeros(spec.train.batch_size, *shape)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x), torch.zeros(len(x), dtype=torch.long))
    return (weights * (2 + states) + saved) / 2**20


def fit_cohort(limit: int, member_mb: float, budget_mb: float | None) -> int:
    """Members per cohort: at most ``limit``, and as many as fit in ``budget_mb`` (at
    least one: a run too big for the budget trains alone, as it would without cohorts)."""
    if budget_mb is None:
        return limit
    return max(1, min(limit, int(budget_mb // max(member_mb, 1e-9))))


def default_memory_budget_mb(device: torch.device) -> float | None:
    """80% of the GPU memory free now (the rest for the allocator's fragmentation and
    the evaluation batches); no budget on CPU."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return 0.8 * free / 2**20


def _stacked_holder(models: list[nn.Module]) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A copy of the first member whose parameters are the members' stacked parameters
    (leaves the optimizer steps; the module structure keeps the optimizer's parameter
    groups), and the members' stacked buffers."""
    params, buffers = stack_module_state(models)
    holder = copy.deepcopy(models[0])
    for name, value in params.items():
        owner, _, leaf = name.rpartition(".")
        setattr(holder.get_submodule(owner), leaf, nn.Parameter(value.detach()))
    return holder, buffers


def _unstack_into(models: list[nn.Module], holder: nn.Module,
                  buffers: dict[str, torch.Tensor]) -> None:
    """Copy each member's slice of the stacked state into its own module (for the
    per-member evaluation and measurements, which use the ordinary code paths)."""
    stacked = dict(holder.named_parameters())
    with torch.no_grad():
        for index, model in enumerate(models):
            for name, param in model.named_parameters():
                param.copy_(stacked[name][index])
            for name, buffer in model.named_buffers():
                if name in buffers:
                    buffer.copy_(buffers[name][index])


def train_cohort(
    specs: list[RunSpec], device: torch.device | None = None,
    on_epoch: Callable[[int, EpochMetrics], None] | None = None,
    on_params: Callable[[int, int, list[tuple[str, str, float]]], None] | None = None,
    on_layers: Callable[[int, int, list[Any]], None] | None = None,
) -> list[RunResult]:
    """Train ``specs`` (same model, activation, data and training settings; different
    seeds or initializers) as one stacked model; one ``RunResult`` per spec, in order.

    The callbacks get the member's index first: ``on_epoch(i, metrics)``,
    ``on_params(i, epoch, values)``, ``on_layers(i, epoch, values)``, as ``run_one``'s."""
    check_cohort(specs)
    device = device or resolve_device(specs[0].train.device)
    started = time.perf_counter()
    first = specs[0]
    configure_determinism(first.train.deterministic, device)
    data = prepare_data(first, device)  # one copy of the data for every member
    models = [initialized_model(spec, data) for spec in specs]
    bf16 = use_bf16(first.train.precision, device)
    for model in models:
        model.actlab_bf16 = bf16
    holder, buffers = _stacked_holder(models)
    params = dict(holder.named_parameters())
    optimizer = build_optimizer(holder, **first.train.optimizer.model_dump())
    schedule = build_schedule(first.train.schedule)
    base_lr, batch_size = first.train.optimizer.lr, first.train.batch_size
    steps_per_epoch = max(1, len(data.train) // batch_size
                          + (len(data.train) % batch_size >= 2))
    total_steps = steps_per_epoch * first.train.epochs
    smoothing = first.train.label_smoothing
    generators = [torch.Generator().manual_seed(spec.seed) for spec in specs]
    size = len(specs)

    def member_step(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                    x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = functional_call(holder, (p, b), (x,))
        loss = F.cross_entropy(logits.float(), y, label_smoothing=smoothing)
        return loss, (logits.detach().argmax(1) == y).sum()

    step_all = vmap(member_step, randomness="different")
    info = [{"parameters": count_parameters(model),
             "activation_sites": model.activation_site_count,
             "init_report": model.init_report, "train_size": len(data.train),
             "val_size": len(data.val), "test_size": len(data.test),
             "input_shape": list(data.splits.train.images.shape[1:]),
             "num_classes": data.splits.num_classes, "env": environment(device),
             "cohort_size": size} for model in models]
    probe = data.example_batch(256)
    tracks = [on_params is not None and any(True for _ in activation_parameter_tensors(m))
              for m in models]

    def measure(epoch: int) -> None:
        for index, model in enumerate(models):
            if index in results:
                continue
            if tracks[index]:
                on_params(index, epoch, activation_parameters(model))  # type: ignore[misc]
            if on_layers is not None and specs[index].train.layer_stats:
                on_layers(index, epoch, weight_statistics(model)
                          + dead_unit_fractions(model, probe))

    results: dict[int, RunResult] = {}
    epochs: list[list[EpochMetrics]] = [[] for _ in specs]
    best: list[tuple[float, int, dict[str, torch.Tensor]] | None] = [None] * size
    measure(0)
    step = 0
    for epoch in range(1, first.train.epochs + 1):
        holder.train()
        reset_peak_memory(device)
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros(size, device=device)
        correct = torch.zeros(size, dtype=torch.long, device=device)
        seen = 0
        lr = base_lr
        for batches in zip(*(data.train_batches(batch_size, g) for g in generators),
                           strict=True):
            lr = schedule(step, total_steps, base_lr, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            x = torch.stack([b[0] for b in batches])
            y = torch.stack([b[1] for b in batches])
            with autocast_for(device, bf16):
                losses, hits = step_all(params, buffers, x, y)
            optimizer.zero_grad(set_to_none=True)
            # Members share no parameter, so the sum's gradient is each member's own.
            losses.sum().backward()
            optimizer.step()
            loss_sum += losses.detach() * y.shape[1]
            correct += hits
            seen += y.shape[1]
            step += 1
        train_time = time.perf_counter() - epoch_start
        _unstack_into(models, holder, buffers)
        train_losses = (loss_sum / seen).tolist()
        train_accs = (correct.float() / seen).tolist()
        for index, (spec, model) in enumerate(zip(specs, models, strict=True)):
            if index in results:
                continue
            train_loss = train_losses[index]
            if not math.isfinite(train_loss) or train_loss > spec.train.loss_bound:
                reason = ("non-finite training loss" if not math.isfinite(train_loss) else
                          f"training loss {train_loss:.3g} above the bound "
                          f"{spec.train.loss_bound:g}")
                results[index] = _diverged(spec, epochs[index], epoch, reason, info[index],
                                           started)
                continue
            val_loss, val_acc = evaluate(model, data, data.val, spec.train.eval_batch_size)
            test_loss, test_acc = (evaluate(model, data, data.test, spec.train.eval_batch_size)
                                   if spec.train.test_each_epoch else (None, None))
            metrics = EpochMetrics(
                epoch=epoch, train_loss=train_loss, train_acc=train_accs[index],
                val_loss=val_loss, val_acc=val_acc, lr=lr,
                epoch_time=time.perf_counter() - epoch_start, images_per_s=seen / train_time,
                test_loss=test_loss, test_acc=test_acc, peak_memory_mb=peak_memory_mb(device))
            epochs[index].append(metrics)
            if on_epoch is not None:
                on_epoch(index, metrics)
            if math.isfinite(val_acc) and (best[index] is None or val_acc > best[index][0]):
                last = epoch == spec.train.epochs
                best[index] = (val_acc, epoch, {} if last else
                               {k: v.detach().clone() for k, v in model.state_dict().items()})
        measure(epoch)
        for index, spec in enumerate(specs):
            if index not in results and (collapse := chance_collapse(
                    epochs[index], data.splits.num_classes, spec.train.chance_epochs)):
                results[index] = _diverged(spec, epochs[index], epoch, collapse, info[index],
                                           started)
        if len(results) == size:
            break
    for index, (spec, model) in enumerate(zip(specs, models, strict=True)):
        if index not in results:
            results[index] = _completed(spec, model, data, epochs[index], best[index],
                                        info[index], device, started)
    return [results[index] for index in range(size)]


def _diverged(spec: RunSpec, epochs: list[EpochMetrics], epoch: int, reason: str,
              info: dict[str, Any], started: float) -> RunResult:
    log.info("%s diverged in epoch %d: %s", spec.describe(), epoch, reason)
    info["wall_time"] = time.perf_counter() - started
    return RunResult("diverged", epochs, diverged_epoch=epoch, reason=reason, info=info)


def _completed(spec: RunSpec, model: nn.Module, data: Any, epochs: list[EpochMetrics],
               best: tuple[float, int, dict[str, torch.Tensor]] | None,
               info: dict[str, Any], device: torch.device, started: float) -> RunResult:
    """The final metrics of a member that trained to the end (as ``run_one``'s)."""
    final = final_metrics(model, data, spec)
    final.update(curve_metrics(epochs))
    final["best_val_epoch"] = best[1] if best is not None else spec.train.epochs
    final["best_val_acc"] = best[0] if best is not None else epochs[-1].val_acc
    if best is not None and best[2]:
        model.load_state_dict(best[2])
        final.update(final_metrics(model, data, spec, prefix="best_test_"))
    else:
        final.update({f"best_{k}": v for k, v in final.items() if k.startswith("test_")})
    final["peak_memory_mb"] = run_peak_memory_mb(epochs, device)
    info["wall_time"] = time.perf_counter() - started
    return RunResult("completed", epochs, final=final, info=info)
