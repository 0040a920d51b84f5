"""The training engine: ``run_one(spec) -> RunResult``.

The loop is deliberately short: the lr comes from a pure schedule function, batches come
normalized from device memory, and per-batch statistics stay on the device as running
sums, so the loop adds nothing measurable to a hand-written PyTorch loop (benchmarks/).
Divergence (a non-finite loss, or a mean epoch loss above ``train.loss_bound``, or a
collapse to chance) ends the run as ``diverged`` with its epoch and reason; the curves
up to that point are kept. Setup, the optimizer step, evaluation and the finish step
are the training core's (:mod:`actlab.train.core`), shared with cohorts and lr-find.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from actlab.spec import RunSpec
from actlab.train.checkpoint import Checkpoint, restore_rng_states, rng_states
from actlab.train.core import (
    Best,
    Diverged,
    EpochMetrics,
    EpochTraining,
    RunObserver,
    RunResult,
    Setup,
    activation_parameters,
    chance_collapse,
    completed_result,
    diverged_result,
    epoch_metrics,
    has_activation_parameters,
    loss_problem,
    run_info,
    setup,
    update_best,
)
from actlab.train.environment import environment_changes, reset_peak_memory
from actlab.train.monitors import GradientNorms, dead_unit_fractions, weight_statistics

log = logging.getLogger(__name__)

#: How often (in steps) the loop looks at the loss to stop a diverging run early.
DIVERGENCE_CHECK_EVERY = 50


def run_one(spec: RunSpec, observer: RunObserver | None = None,
            device: torch.device | None = None, checkpoint: Checkpoint | None = None
            ) -> RunResult:
    """Train one run to completion (or divergence) and measure it.

    ``observer`` receives each epoch's metrics as the epoch ends and, at initialization
    (epoch 0) and after each epoch, the learnable activations' values and the per-layer
    measurements (taken only when there is an observer). With ``checkpoint``, the full
    training state is written after every epoch (then ``observer.checkpoint_written``)
    and, if the file holds epoch ``checkpoint.resume_epoch`` of this run, training
    resumes from it exactly; the file is removed when the run ends unless kept.
    """
    checkpoint = checkpoint or Checkpoint()
    started = time.perf_counter()
    run = setup(spec, device)
    info = {**run_info(run.model, run.data, run.device), **run.compile_info}
    measure = Measurements(run, observer)
    measure.params(0)  # the initialized values, also when the run resumes
    state = RunState(torch.Generator().manual_seed(spec.seed))
    if not resume(run, state, info, checkpoint):
        measure.layers(0)
    for epoch in range(state.first_epoch, spec.train.epochs + 1):
        try:
            metrics = train_epoch(run, state, epoch, measure.gradients)
        except Diverged as signal:
            checkpoint.discard()
            return diverged_result(spec, state.epochs, epoch, signal.reason, info,
                                   state.elapsed(started))
        state.epochs.append(metrics)
        measure.epoch_finished(epoch, metrics)
        state.best = update_best(state.best, epoch, metrics.val_acc, run.model,
                                 spec.train.epochs)
        if epoch < spec.train.epochs and checkpoint.write(
                checkpoint_state(run, state, info, epoch, started)):
            measure.observer.checkpoint_written(epoch)
        collapse = chance_collapse(state.epochs, run.data.splits.num_classes,
                                   spec.train.chance_epochs)
        if collapse:
            checkpoint.discard()
            return diverged_result(spec, state.epochs, epoch, collapse, info,
                                   state.elapsed(started))
    result = completed_result(spec, run.model, run.data, state.epochs, state.best, info,
                              started, state.elapsed_before)
    checkpoint.discard()
    return result


@dataclass
class RunState:
    """Where a run stands: what a checkpoint saves besides the model and optimizer."""

    generator: torch.Generator  # the data order and augmentation draws
    step: int = 0
    epochs: list[EpochMetrics] = field(default_factory=list)
    best: Best | None = None
    first_epoch: int = 1
    elapsed_before: float = 0.0  # seconds trained before a resume

    def elapsed(self, started: float) -> float:
        return self.elapsed_before + time.perf_counter() - started


class Measurements:
    """The learnable activations' values and the per-layer measurements (weights, dead
    units on a fixed batch, gradient norms with ``train.grad_stats``), sent to the
    observer; nothing is measured without one."""

    def __init__(self, run: Setup, observer: RunObserver | None) -> None:
        self.run = run
        self.observer = observer or RunObserver()
        self.active = observer is not None
        self.tracks_params = self.active and has_activation_parameters(run.model)
        self.probe = run.data.example_batch(256)
        self.gradients = GradientNorms(run.model) if run.spec.train.grad_stats else None

    def params(self, epoch: int) -> None:
        if self.tracks_params:
            self.observer.params_recorded(epoch, activation_parameters(self.run.model))

    def layers(self, epoch: int) -> None:
        if self.active and self.run.spec.train.layer_stats:
            model = self.run.model
            values = weight_statistics(model) + dead_unit_fractions(model, self.probe)
            gradients = self.gradients.values() if self.gradients is not None else []
            self.observer.layers_recorded(epoch, values + gradients)

    def epoch_finished(self, epoch: int, metrics: EpochMetrics) -> None:
        self.observer.epoch_finished(metrics)
        self.params(epoch)
        self.layers(epoch)
        if self.gradients is not None:
            self.gradients.reset()


def train_epoch(run: Setup, state: RunState, epoch: int, gradients: GradientNorms | None
                ) -> EpochMetrics:
    """One epoch of training, then its evaluation; raises :class:`Diverged`."""
    run.model.train()
    reset_peak_memory(run.device)
    totals = EpochTraining(torch.zeros((), device=run.device),
                           torch.zeros((), dtype=torch.long, device=run.device),
                           lr=run.spec.train.optimizer.lr)
    for x, y in run.data.train_batches(run.spec.train.batch_size, state.generator):
        totals.lr = run.lr_at(state.step)
        loss, logits = run.train_step(x, y, totals.lr, gradients)
        totals.loss_sum += loss.detach() * len(y)
        totals.correct += (logits.detach().argmax(1) == y).sum()
        totals.seen += len(y)
        state.step += 1
        if state.step % DIVERGENCE_CHECK_EVERY == 0 and not torch.isfinite(loss):
            raise Diverged(f"non-finite training loss at step {state.step}")
    train_loss = totals.loss_sum.item() / totals.seen
    problem = loss_problem(train_loss, run.spec.train.loss_bound)
    if problem:
        raise Diverged(problem)
    train_time = time.perf_counter() - totals.started
    return epoch_metrics(run.model, run.data, run.spec, epoch, train_loss,
                         totals.correct.item() / totals.seen, totals, train_time)


def checkpoint_state(run: Setup, state: RunState, info: dict[str, Any], epoch: int,
                     started: float) -> dict[str, Any]:
    """Everything an exact resume after ``epoch`` needs."""
    return {"run_id": run.spec.run_id, "epoch": epoch, "step": state.step,
            "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "rng": rng_states(state.generator), "best": state.best,
            "epochs": [asdict(e) for e in state.epochs], "elapsed": state.elapsed(started),
            "env": info["env"], "env_changes": info.get("resumed_env_changes", [])}


def resume(run: Setup, state: RunState, info: dict[str, Any], checkpoint: Checkpoint
           ) -> bool:
    """Restore the run from its checkpoint if it has a usable one; record where it resumed
    and any change of environment since (its numbers are then not bit-identical to an
    uninterrupted run's)."""
    saved = checkpoint.load(run.spec.run_id)
    if saved is None:
        return False
    run.model.load_state_dict(saved["model"])
    run.optimizer.load_state_dict(saved["optimizer"])
    restore_rng_states(state.generator, saved["rng"])
    state.step, state.best = saved["step"], saved["best"]
    state.epochs = [EpochMetrics(**e) for e in saved["epochs"]]
    state.first_epoch, state.elapsed_before = saved["epoch"] + 1, saved["elapsed"]
    info["resumed_from_epoch"] = saved["epoch"]
    log.info("%s resumes after epoch %d", run.spec.describe(), saved["epoch"])
    # Checkpoints from before the environment was saved in them have no "env".
    changes = environment_changes(saved["env"], info["env"]) if "env" in saved else {}
    if changes:
        log.warning("%s resumes after epoch %d in another environment (%s): its numbers "
                    "will not be bit-identical to an uninterrupted run's", run.spec.describe(),
                    saved["epoch"], "; ".join(f"{key} {old} -> {new}"
                                              for key, (old, new) in changes.items()))
    env_changes = saved.get("env_changes", []) + (
        [{"after_epoch": saved["epoch"], "changes": changes}] if changes else [])
    if env_changes:
        info["resumed_env_changes"] = env_changes
    return True
