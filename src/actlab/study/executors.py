"""Executors: take the runnable cells of a study from the store and run them.

``run_study`` is the serial executor. It claims one cell at a time, trains it with
:func:`actlab.train.engine.run_one`, writes every epoch as it finishes (a
:class:`StoreObserver`) and the final result at the end. A run that raises is stored as
``failed`` with its traceback and the study goes on; Ctrl-C gives the claimed run back
so the next ``actlab run`` redoes it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from actlab.spec import RunSpec
from actlab.study.phases import current_plan, extend_with_decided
from actlab.study.plan import Study
from actlab.study.store import Heartbeat, PlanChangedError, Store, StoreError, new_owner
from actlab.train.checkpoint import Checkpoint
from actlab.train.cohort import cohort_key, cohort_refusal
from actlab.train.core import EpochMetrics, LayerValues, ParamValues, RunObserver, RunResult
from actlab.train.engine import run_one

log = logging.getLogger(__name__)


class RunEvents:
    """Progress callbacks of an executor; the CLI overrides them to draw progress."""

    def study_started(self, study: Study, total: int, done: int) -> None: ...

    def run_started(self, spec: RunSpec) -> None: ...

    def run_placed(self, spec: RunSpec, host: str, pid: int) -> None:
        """Where a run's process is (the Ray executor: every time it is (re)submitted)."""

    def epoch_finished(self, spec: RunSpec, metrics: EpochMetrics) -> None: ...

    def run_finished(self, spec: RunSpec, result: RunResult) -> None: ...

    def run_failed(self, spec: RunSpec, error: str) -> None: ...

    def plan_grew(self, added: int) -> None:
        """Runs joined the plan (tuning finals, adaptive seeds: study/phases.py)."""


class StoreObserver(RunObserver):
    """A run's observer in the serial and local executors: every measurement goes to the
    store as it happens, every epoch also to the executor's events."""

    def __init__(self, store: Store, study_id: int, spec: RunSpec, events: RunEvents) -> None:
        self.store, self.study_id, self.spec, self.events = store, study_id, spec, events
        self.run_id = spec.run_id

    def epoch_finished(self, metrics: EpochMetrics) -> None:
        self.store.record_epoch(self.study_id, self.run_id, metrics)
        self.events.epoch_finished(self.spec, metrics)

    def params_recorded(self, epoch: int, values: ParamValues) -> None:
        self.store.record_params(self.study_id, self.run_id, epoch, values)

    def layers_recorded(self, epoch: int, values: LayerValues) -> None:
        self.store.record_layers(self.study_id, self.run_id, epoch, values)

    def checkpoint_written(self, epoch: int) -> None:
        self.store.set_checkpoint_epoch(self.study_id, self.run_id, epoch)


@dataclass
class StudySummary:
    counts: dict[str, int]
    ran: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)  # records, if a caller wants


@contextlib.contextmanager
def interrupted_by_termination() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP stop this process as Ctrl-C does (a
    KeyboardInterrupt): a runner gives its claimed run back (pending again) and a local
    executor stops its workers, instead of dying with runs claimed and workers left
    training. Only the main thread can receive signals; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_plan_kept(store: Store, study: Study, study_id: int, specs: list[RunSpec]) -> None:
    """After a runner's loop: raise if another process re-planned the study (``actlab run
    --replan``) and took runs of this runner's plan out of it unfinished, so that a
    runner never ends as if its plan were done."""
    lost = store.unfinished_out_of_plan(study_id, [spec.run_id for spec in specs])
    if lost:
        raise PlanChangedError(
            f"study '{study.name}' was re-planned by another `actlab run --replan` while "
            f"this runner ran: {len(lost)} of the {len(specs)} runs of this runner's plan "
            "left the plan unfinished and were not run. Run the study file you want again "
            "(the stored plan is now the other file's; --replan to restore this one)")


def run_study(store: Store, study: Study, events: RunEvents | None = None,
              retry_failed: bool = False, data_dir: str | None = None,
              keep_checkpoints: bool = False, cohort: int = 1,
              cohort_memory_mb: float | None = None, memory_share: int = 1,
              replan: bool = False) -> StudySummary:
    """Run every cell of ``study`` not finished yet, one after another. ``data_dir``
    overrides where every run reads its data (it is not part of a run's identity).

    Each run writes a checkpoint beside the store after every epoch; a run that was
    interrupted (killed, Ctrl-C) resumes from its last one. Checkpoints are removed when
    runs end unless ``keep_checkpoints``.

    ``cohort > 1`` trains up to that many runs that differ only in seed and initializer
    at once as one stacked model (:mod:`actlab.train.cohort`; for GPUs), as many as fit in
    ``cohort_memory_mb`` (default: 80% of the free GPU memory over ``memory_share``, the
    processes sharing the GPU; no limit on CPU); a run
    that cannot join a cohort trains alone. Cohorts write no checkpoints: an interrupted
    cohort's runs start over.

    A study of the same name with another plan in the store is refused unless ``replan``
    (:meth:`Store.register_study`)."""
    events = events or RunEvents()
    specs = current_plan(store, study)
    study_id = store.register_study(study, specs, replan=replan)
    if retry_failed:
        store.reset_failed(study_id)
    counts = store.counts(study_id)
    events.study_started(study, len(specs), counts["completed"] + counts["diverged"])
    owner = new_owner()
    summary = StudySummary(counts=counts)
    try:
        while True:  # a plan that grows: tuning finals, adaptive seeds join as decided
            _claim_and_run(store, study_id, owner, events, summary, data_dir,
                           keep_checkpoints, cohort, cohort_memory_mb, memory_share)
            if added := extend_with_decided(store, study, study_id):
                events.plan_grew(added)
                continue
            if not study.grows or not _others_still_tuning(store, study_id):
                break
            time.sleep(1.0)  # another process holds the last trials of a group
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: nothing stays claimed by us
        store.release_owned(study_id, owner)
        raise
    summary.counts = store.counts(study_id)
    check_plan_kept(store, study, study_id, current_plan(store, study))
    return summary


def _others_still_tuning(store: Store, study_id: int) -> bool:
    """Whether runs of the plan are still pending or running (in other processes)."""
    counts = store.counts(study_id)
    return counts["pending"] + counts["running"] > 0


def _claim_and_run(store: Store, study_id: int, owner: str, events: RunEvents,
                   summary: StudySummary, data_dir: str | None, keep_checkpoints: bool,
                   cohort: int, cohort_memory_mb: float | None, memory_share: int) -> None:
    """The serial executor's loop: claim a run (or a cohort of them), train, repeat."""
    sizes: dict[str, int] = {}
    while (claimed := store.claim_next(study_id, owner)) is not None:
        spec = claimed.with_data_dir(data_dir)
        members, size = [spec], 1
        if cohort > 1 and cohort_refusal(spec) is None:
            key = cohort_key(claimed)
            if key not in sizes:  # measured once per kind of run
                sizes[key] = _cohort_size(spec, cohort, cohort_memory_mb, memory_share)
            size = sizes[key]
        if size > 1:
            same = functools.partial(_same_cohort, key)
            while len(members) < size and (more := store.claim_next(
                    study_id, owner, match=same)) is not None:
                members.append(more.with_data_dir(data_dir))
        if len(members) > 1:
            _run_cohort(store, study_id, owner, members, events, summary)
        else:
            _run_single(store, study_id, owner, spec, events, summary, keep_checkpoints)


def _cohort_size(spec: RunSpec, limit: int, budget_mb: float | None, share: int) -> int:
    """Members for the cohort of ``spec``'s kind: ``limit``, capped by the memory budget."""
    from actlab.train.cohort import default_memory_budget_mb, fit_cohort, member_memory_mb
    from actlab.train.environment import resolve_device

    if budget_mb is None:
        budget_mb = default_memory_budget_mb(resolve_device(spec.train.device))
        budget_mb = None if budget_mb is None else budget_mb / share
    member = member_memory_mb(spec)
    size = fit_cohort(limit, member, budget_mb)
    log.info("cohorts of %d for %s (%.0f MiB per member, budget %s MiB)", size,
             spec.describe(), member, "none" if budget_mb is None else f"{budget_mb:.0f}")
    return size


def _same_cohort(key: str, spec: RunSpec) -> bool:
    return cohort_key(spec) == key


def _run_single(store: Store, study_id: int, owner: str, spec: RunSpec, events: RunEvents,
                summary: StudySummary, keep_checkpoints: bool) -> None:
    run_id = spec.run_id
    checkpoint = Checkpoint(store.artifact_dir(study_id, run_id) / "checkpoint.pt",
                            store.checkpoint_epoch(study_id, run_id), keep_checkpoints)
    events.run_started(spec)
    try:
        with Heartbeat(store.path, study_id, run_id, owner):
            result = run_one(spec, StoreObserver(store, study_id, spec, events),
                             checkpoint=checkpoint)
    except StoreError:
        raise  # the store itself cannot be written: not this run's fault; stop here
    except Exception:
        error = traceback.format_exc()
        log.error("run %s (%s) failed:\n%s", run_id, spec.describe(), error)
        store.fail(study_id, run_id, error)
        checkpoint.discard()
        summary.failures.append((spec.describe(), error.strip().splitlines()[-1]))
        events.run_failed(spec, error)
    else:
        store.finish(study_id, run_id, result)
        events.run_finished(spec, result)
    summary.ran += 1


def _run_cohort(store: Store, study_id: int, owner: str, members: list[RunSpec],
                events: RunEvents, summary: StudySummary) -> None:
    """Train ``members`` as one cohort; each member's epochs and result are stored as a
    run of its own. An error fails every member (they share one computation)."""
    from actlab.train.cohort import train_cohort

    ids = [spec.run_id for spec in members]
    for spec in members:
        events.run_started(spec)
    try:
        with contextlib.ExitStack() as beats:
            for run_id in ids:
                beats.enter_context(Heartbeat(store.path, study_id, run_id, owner))
            results = train_cohort(members, observers=[
                StoreObserver(store, study_id, spec, events) for spec in members])
    except StoreError:
        raise
    except Exception:
        error = traceback.format_exc()
        log.error("cohort of %d runs (%s) failed:\n%s", len(ids), members[0].describe(),
                  error)
        for spec in members:
            store.fail(study_id, spec.run_id, error)
            summary.failures.append((spec.describe(), error.strip().splitlines()[-1]))
            events.run_failed(spec, error)
    else:
        for spec, result in zip(members, results, strict=True):
            store.finish(study_id, spec.run_id, result)
            events.run_finished(spec, result)
    summary.ran += len(members)


def check_data(specs: list[RunSpec], data_dir: str | None = None) -> None:
    """Load every distinct dataset of the plan once before anything is stored, so that
    missing or corrupt data is one clear error (DatasetError) instead of a failed run per
    cell. Loads are cached per process, so the serial executor reuses them."""
    from actlab.data import load_dataset

    seen: set[str] = set()
    for spec in specs:
        data = spec.with_data_dir(data_dir).data
        key = json.dumps([data.name, data.data_dir, data.options], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            load_dataset(data.name, data.data_dir, **data.options)


def _local_worker(store_path: str, study_document: dict, threads: int, retry_failed: bool,
                  data_dir: str | None, keep_checkpoints: bool, gpu: str | None,
                  cohort: int = 1, cohort_memory_mb: float | None = None,
                  memory_share: int = 1) -> None:
    """One process of the local executor: claim and train runs until none is left."""
    if gpu is not None:  # before CUDA is initialized: this process sees one GPU, as cuda:0
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    import torch

    torch.set_num_threads(threads)
    try:
        with interrupted_by_termination(), Store(store_path) as store:
            run_study(store, Study.model_validate(study_document), None, retry_failed,
                      data_dir, keep_checkpoints, cohort, cohort_memory_mb, memory_share)
    except KeyboardInterrupt:  # stopped by the parent (or Ctrl-C): its run was given back
        raise SystemExit(130) from None


def visible_gpus() -> list[str]:
    """The GPUs this process sees, as CUDA_VISIBLE_DEVICES entries (respecting one that
    is already set); empty without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [d.strip() for d in visible.split(",") if d.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_assignment(jobs: int, gpus: list[str]) -> list[str | None]:
    """The GPU each of ``jobs`` local workers is pinned to, round robin (None for all
    when there is no GPU): with ``jobs`` = GPUs x N every GPU runs N runs at once."""
    return [gpus[index % len(gpus)] if gpus else None for index in range(jobs)]


def run_study_local(store: Store, study: Study, jobs: int, threads_per_job: int,
                    on_progress: Callable[[dict[str, int]], None] | None = None,
                    retry_failed: bool = False, data_dir: str | None = None,
                    keep_checkpoints: bool = False, poll_s: float = 0.5, cohort: int = 1,
                    cohort_memory_mb: float | None = None, replan: bool = False
                    ) -> StudySummary:
    """The local executor: ``jobs`` worker processes split the study through the store's
    atomic claims (each worker a serial executor with ``threads_per_job`` torch threads).
    Where there are GPUs, each worker is pinned to one (:func:`gpu_assignment`).

    The store is the only channel: workers claim, heartbeat and write their own runs, and
    this process reports progress by reading the counts. A worker that dies leaves its
    run to be reclaimed (and resumed from its checkpoint) by any later ``actlab run``.
    ``cohort`` and ``cohort_memory_mb`` go to every worker (see :func:`run_study`); by
    default the workers sharing a GPU split its free memory between their cohorts.
    """
    specs = current_plan(store, study)
    study_id = store.register_study(study, specs, replan=replan)
    if retry_failed:
        store.reset_failed(study_id)
    finished = ("completed", "diverged", "failed")
    before = sum(store.counts(study_id)[s] for s in finished)
    context = multiprocessing.get_context("spawn")  # no forked torch or SQLite state
    gpus = gpu_assignment(jobs, visible_gpus())
    share = max(1, jobs // max(1, len(set(gpus) - {None})))  # workers per GPU
    workers = [context.Process(target=_local_worker, name=f"actlab-worker-{index}", args=(
        str(store.path), study.model_dump(), threads_per_job, False, data_dir,
        keep_checkpoints, gpu, cohort, cohort_memory_mb, share)) for index, gpu in enumerate(gpus)]
    for worker in workers:
        worker.start()
    try:
        with interrupted_by_termination():
            while any(worker.is_alive() for worker in workers):
                if on_progress is not None:
                    on_progress(store.counts(study_id))
                time.sleep(poll_s)
    except KeyboardInterrupt:
        for worker in workers:
            worker.terminate()
        raise
    finally:
        for worker in workers:
            worker.join()
    counts = store.counts(study_id)
    if on_progress is not None:
        on_progress(counts)
    crashed = [w.name for w in workers if w.exitcode not in (0, None)]
    if crashed:
        log.error("local executor: worker(s) %s exited abnormally; their runs are reclaimed "
                  "by the next `actlab run`", ", ".join(crashed))
    check_plan_kept(store, study, study_id, current_plan(store, study))
    return StudySummary(counts=counts, ran=sum(counts[s] for s in finished) - before)
