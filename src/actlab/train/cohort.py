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
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from actlab.activations import ACTIVATIONS, Activation, resolve_act
from actlab.data import DeviceData
from actlab.schedules import build_schedule
from actlab.spec import RunSpec
from actlab.train.core import (
    Best,
    EpochMetrics,
    EpochTraining,
    RunObserver,
    RunResult,
    activation_parameters,
    chance_collapse,
    classification_loss,
    completed_result,
    diverged_result,
    epoch_metrics,
    has_activation_parameters,
    initialized_model,
    loss_problem,
    prepare_data,
    prepare_splits,
    run_info,
    set_lr,
    steps_per_epoch,
    update_best,
)
from actlab.train.environment import (
    autocast_for,
    configure_determinism,
    reset_peak_memory,
    resolve_device,
    use_bf16,
)
from actlab.train.monitors import dead_unit_fractions, weight_statistics
from actlab.train.optim import build_optimizer

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
    if ACTIVATIONS.get(spec.act.name).constrain is not Activation.constrain:
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


def train_cohort(specs: list[RunSpec], device: torch.device | None = None,
                 observers: list[RunObserver] | None = None) -> list[RunResult]:
    """Train ``specs`` (same model, activation, data and training settings; different
    seeds or initializers) as one stacked model; one ``RunResult`` per spec, in order.
    ``observers`` (one per spec) receive each member's epochs, learnable activation
    values and layer measurements, as ``run_one``'s observer does.

    The members' curves, divergence checks and results are each member's own; only the
    training step is shared (one vmapped forward and backward, one optimizer step)."""
    check_cohort(specs)
    device = device or resolve_device(specs[0].train.device)
    started = time.perf_counter()
    first = specs[0]
    configure_determinism(first.train.deterministic, device)
    data = prepare_data(first, device)  # one copy of the data for every member
    act = resolve_act(first.act)
    members = [Member(spec, initialized_model(spec, data, act), observer, data, len(specs))
               for spec, observer in zip(specs, observers or [None] * len(specs),
                                         strict=True)]
    bf16 = use_bf16(first.train.precision, device)
    for member in members:
        member.model.actlab_bf16 = bf16
    holder, buffers = _stacked_holder([member.model for member in members])
    optimizer = build_optimizer(holder, **first.train.optimizer.model_dump())
    step_all = _stacked_step(holder, first.train.label_smoothing)
    probe = data.example_batch(256)
    for member in members:
        member.measure(0, probe)
    schedule = build_schedule(first.train.schedule)
    per_epoch = steps_per_epoch(len(data.train), first.train.batch_size)
    generators = [torch.Generator().manual_seed(spec.seed) for spec in specs]
    step = 0
    for epoch in range(1, first.train.epochs + 1):
        holder.train()
        reset_peak_memory(device)
        totals = EpochTraining(torch.zeros(len(specs), device=device),
                               torch.zeros(len(specs), dtype=torch.long, device=device),
                               lr=first.train.optimizer.lr)
        for stacked in zip(*(data.train_batches(first.train.batch_size, g)
                             for g in generators), strict=True):
            totals.lr = schedule(step, per_epoch * first.train.epochs,
                                 first.train.optimizer.lr, per_epoch)
            set_lr(optimizer, totals.lr)
            x = torch.stack([batch[0] for batch in stacked])
            y = torch.stack([batch[1] for batch in stacked])
            with autocast_for(device, bf16):
                losses, hits = step_all(dict(holder.named_parameters()), buffers, x, y)
            optimizer.zero_grad(set_to_none=True)
            # Members share no parameter, so the sum's gradient is each member's own.
            losses.sum().backward()
            optimizer.step()
            totals.loss_sum += losses.detach() * y.shape[1]
            totals.correct += hits
            totals.seen += y.shape[1]
            step += 1
        train_time = time.perf_counter() - totals.started
        _unstack_into([member.model for member in members], holder, buffers)
        losses_, accs = ((totals.loss_sum / totals.seen).tolist(),
                         (totals.correct.float() / totals.seen).tolist())
        running = [m for m in members if m.result is None]
        for member in running:
            index = members.index(member)
            member.end_epoch(epoch, losses_[index], accs[index], totals, train_time, started)
        for member in running:
            if member.result is None:
                member.measure(epoch, probe)
                member.check_collapse(epoch, started)
        if all(member.result is not None for member in members):
            break
    return [member.finish(started) for member in members]


def _stacked_step(holder: nn.Module, smoothing: float) -> Any:
    """All members' forward and loss as one vmapped call: (losses, correct counts)."""

    def member_step(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                    x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = functional_call(holder, (p, b), (x,))
        loss = classification_loss(logits, y, smoothing)
        return loss, (logits.detach().argmax(1) == y).sum()

    return vmap(member_step, randomness="different")


class Member:
    """One run of a cohort: its own model copy (for evaluation and measurements), curves,
    best epoch, observer and, once it has ended early, its result."""

    def __init__(self, spec: RunSpec, model: nn.Module, observer: RunObserver | None,
                 data: DeviceData, cohort_size: int) -> None:
        self.spec, self.model, self.data = spec, model, data
        self.observer = observer or RunObserver()
        self.tracks_params = observer is not None and has_activation_parameters(model)
        self.measures_layers = observer is not None and spec.train.layer_stats
        self.epochs: list[EpochMetrics] = []
        self.best: Best | None = None
        self.info = {**run_info(model, data, data.device), "cohort_size": cohort_size}
        self.result: RunResult | None = None

    def measure(self, epoch: int, probe: torch.Tensor) -> None:
        if self.tracks_params:
            self.observer.params_recorded(epoch, activation_parameters(self.model))
        if self.measures_layers:
            self.observer.layers_recorded(epoch, weight_statistics(self.model)
                                          + dead_unit_fractions(self.model, probe))

    def end_epoch(self, epoch: int, train_loss: float, train_acc: float,
                  totals: EpochTraining, train_time: float, started: float) -> None:
        """Record the epoch, or end the member if its training loss diverged."""
        problem = loss_problem(train_loss, self.spec.train.loss_bound)
        if problem:
            self.result = diverged_result(self.spec, self.epochs, epoch, problem, self.info,
                                          time.perf_counter() - started)
            return
        metrics = epoch_metrics(self.model, self.data, self.spec, epoch, train_loss,
                                train_acc, totals, train_time)
        self.epochs.append(metrics)
        self.observer.epoch_finished(metrics)
        self.best = update_best(self.best, epoch, metrics.val_acc, self.model,
                                self.spec.train.epochs)

    def check_collapse(self, epoch: int, started: float) -> None:
        collapse = chance_collapse(self.epochs, self.data.splits.num_classes,
                                   self.spec.train.chance_epochs)
        if collapse:
            self.result = diverged_result(self.spec, self.epochs, epoch, collapse, self.info,
                                          time.perf_counter() - started)

    def finish(self, started: float) -> RunResult:
        return self.result or completed_result(self.spec, self.model, self.data,
                                               self.epochs, self.best, self.info, started)
