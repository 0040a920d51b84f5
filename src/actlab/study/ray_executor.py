"""The Ray executor: every run of a study is a Ray task on a (local or remote) cluster.

The driver (the ``actlab run`` process) is the single writer to the store. It claims as
many runs as the cluster has slots for, submits each as a Ray *generator* task
(:func:`train_streaming`) with its CPU and GPU request, and writes what the tasks stream
back: every epoch's metrics, learnable-AF values and layer measurements as they happen,
each epoch's checkpoint (as bytes, kept beside the store) and the final result. The
workers never open the store, so it may live on the driver's local disk.

A run whose worker process or node is lost (``WorkerCrashedError``, ``NodeDiedError``,
...) is submitted again, resuming from the last checkpoint the driver received, up to
``max_losses`` times; an exception inside the run is stored as ``failed`` with its
traceback, as in the other executors. If the driver itself dies, its claims expire and
the next ``actlab run`` (with any executor) reclaims and resumes them.

Ray is an optional dependency (``pip install 'actlab[ray]'``); see docs/cluster.md.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actlab import __version__, plugins
from actlab.spec import RunSpec
from actlab.study.executors import RunEvents, StudySummary, check_plan_kept
from actlab.study.phases import current_plan, extend_with_decided
from actlab.study.plan import Study
from actlab.study.store import Store, new_owner
from actlab.train.checkpoint import Checkpoint, save_checkpoint_bytes
from actlab.train.core import EpochMetrics, LayerValues, ParamValues, RunObserver
from actlab.train.engine import run_one

log = logging.getLogger(__name__)

RAY_MISSING = ("the Ray executor needs Ray, an optional dependency: install it with "
               "`pip install 'actlab[ray]'` (on the driver and on every node of the cluster)")


class RayExecutorError(RuntimeError):
    """Ray is missing, the cluster cannot be reached, or it cannot run the study."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayExecutorError(RAY_MISSING) from exc
    return ray


# -- worker side -------------------------------------------------------------------------
def train_streaming(spec_json: str, checkpoint: bytes | None, resume_epoch: int,
                    threads: int, plugin_sources: list[dict[str, Any]] | None = None
                    ) -> Iterator[tuple[Any, ...]]:
    """Train one run in this process and yield its events as they happen (the body of
    the Ray task; a plain generator, so it also runs without Ray):

    ``("started", host, pid, actlab version)``, then per epoch ``("epoch", metrics)``,
    ``("params", epoch, values)``, ``("layers", epoch, values)``,
    ``("checkpoint", epoch, bytes)``, and last ``("result", RunResult)`` or
    ``("error", traceback)``.

    ``checkpoint`` holds the bytes of the run's checkpoint after ``resume_epoch`` (from
    an earlier attempt) or None. ``plugin_sources`` are the study's plug-ins
    (actlab/plugins.py), loaded from their text first, so a node without the files runs
    the same code. The engine runs in a thread and its observer queues the events,
    because a generator can only yield from its own frame.
    """
    import torch

    torch.set_num_threads(threads)
    plugins.load([plugins.PluginSource.model_validate(p) for p in plugin_sources or []])
    plugins.load_installed()
    spec = RunSpec.model_validate_json(spec_json)
    events: queue.Queue[tuple[Any, ...]] = queue.Queue()
    with tempfile.TemporaryDirectory(prefix="actlab-run-") as temp:
        path = Path(temp) / "checkpoint.pt"
        if checkpoint is not None:
            path.write_bytes(checkpoint)

        def train() -> None:
            try:
                result = run_one(spec, QueueObserver(events, path),
                                 checkpoint=Checkpoint(path, resume_epoch))
            except Exception:
                events.put(("error", traceback.format_exc()))
            else:
                events.put(("result", result))

        thread = threading.Thread(target=train, name="actlab-train", daemon=True)
        thread.start()
        yield ("started", socket.gethostname(), os.getpid(), __version__)
        while True:
            event = events.get()
            yield event
            if event[0] in ("result", "error"):
                break
        thread.join()


class QueueObserver(RunObserver):
    """A Ray task's observer: every event goes on the queue its generator yields from,
    checkpoints as the file's bytes (the driver keeps them)."""

    def __init__(self, events: queue.Queue[tuple[Any, ...]], checkpoint: Path) -> None:
        self.events, self.checkpoint = events, checkpoint

    def epoch_finished(self, metrics: EpochMetrics) -> None:
        self.events.put(("epoch", metrics))

    def params_recorded(self, epoch: int, values: ParamValues) -> None:
        self.events.put(("params", epoch, values))

    def layers_recorded(self, epoch: int, values: LayerValues) -> None:
        self.events.put(("layers", epoch, values))

    def checkpoint_written(self, epoch: int) -> None:
        self.events.put(("checkpoint", epoch, self.checkpoint.read_bytes()))


# -- driver side -------------------------------------------------------------------------
@dataclass
class _Attempt:
    spec: RunSpec
    lost: int = 0  # how many times its worker or node was lost so far


@dataclass(frozen=True)
class RayResources:
    """What each run asks Ray for."""

    cpus_per_run: float = 1.0
    runs_per_gpu: int = 1  # >1 packs small models: each run asks for 1/runs_per_gpu GPU

    def gpus(self, spec: RunSpec, cluster_gpus: float) -> float:
        if spec.train.device == "cpu" or cluster_gpus <= 0:
            return 0.0
        return 1.0 / self.runs_per_gpu

    def slots(self, cluster: dict[str, float], use_gpus: bool) -> int:
        """How many runs the cluster can hold at once (nodes may join or leave)."""
        slots = int(cluster.get("CPU", 0.0) // self.cpus_per_run)
        if use_gpus:
            slots = min(slots, round(cluster.get("GPU", 0.0) * self.runs_per_gpu))
        return max(1, slots)


def connect(address: str | None) -> bool:
    """Connect to the cluster at ``address`` ('auto', 'host:port', 'ray://host:port') or
    start a local one; returns True if this call started Ray (and should shut it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
    fix = ("start one with `ray start --head` and pass its address (`--address auto` on "
           "its head node), see docs/cluster.md")
    if address and address != "auto":
        check_reachable(address, where, fix)
    try:
        # Workers' output would tear through the progress display; their errors come
        # back as tracebacks and their logs stay in the session's log directory.
        ray.init(address=address, log_to_driver=False, include_dashboard=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayExecutorError(f"cannot connect to {where}: {exc}; {fix}") from exc
    return True


def check_reachable(address: str, where: str, fix: str, timeout_s: float = 5.0) -> None:
    """Fail at once when nothing listens at ``address`` (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayExecutorError(f"--address {address!r} is not auto, host:port or "
                               "ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RayExecutorError(f"cannot connect to {where}: {exc}; {fix}") from exc


def run_study_ray(store: Store, study: Study, events: RunEvents | None = None,
                  retry_failed: bool = False, data_dir: str | None = None,
                  keep_checkpoints: bool = False, address: str | None = None,
                  resources: RayResources | None = None, max_losses: int = 3,
                  heartbeat_s: float = 30.0, replan: bool = False) -> StudySummary:
    """Run every cell of ``study`` not finished yet as Ray tasks (see the module doc).

    ``address`` is the cluster to use (None: the one ``RAY_ADDRESS`` names or ``ray
    start`` started here, else a new local instance). ``data_dir`` must be readable at
    the same path on every node. A run whose worker or node is lost is resubmitted up to
    ``max_losses`` times."""
    ray = import_ray()
    specs = current_plan(store, study)
    started_ray = connect(address)
    try:
        cluster_gpus = float(ray.cluster_resources().get("GPU", 0.0))
        if cluster_gpus <= 0 and any(spec.train.device == "cuda" for spec in specs):
            raise RayExecutorError(
                "the study asks for device 'cuda' but the Ray cluster has no GPUs: start "
                "nodes with GPUs or set train.device to auto or cpu")
        study_id = store.register_study(study, specs, replan=replan)
        if retry_failed:
            store.reset_failed(study_id)
        counts = store.counts(study_id)
        events = events or RunEvents()
        events.study_started(study, len(specs), counts["completed"] + counts["diverged"])
        driver = _Driver(store, study_id, events, resources or RayResources(), cluster_gpus,
                         plugin_sources=[p.model_dump() for p in study.plugins],
                         use_gpus=cluster_gpus > 0 and any(s.train.device != "cpu"
                                                           for s in specs),
                         data_dir=data_dir, keep_checkpoints=keep_checkpoints,
                         max_losses=max_losses, heartbeat_s=heartbeat_s,
                         grow=functools.partial(extend_with_decided, store, study, study_id)
                         if study.grows else None)
        driver.run()
        driver.summary.counts = store.counts(study_id)
        check_plan_kept(store, study, study_id, current_plan(store, study))
        return driver.summary
    finally:
        if started_ray:
            ray.shutdown()


class _Driver:
    """The loop of the Ray executor: claim, submit, write what the tasks stream back."""

    def __init__(self, store: Store, study_id: int, events: RunEvents,
                 resources: RayResources, cluster_gpus: float, use_gpus: bool,
                 data_dir: str | None, keep_checkpoints: bool, max_losses: int,
                 heartbeat_s: float, plugin_sources: list[dict[str, Any]] | None = None,
                 grow: Callable[[], int] | None = None) -> None:
        self.ray = import_ray()
        self.store, self.study_id, self.events = store, study_id, events
        self.resources, self.cluster_gpus, self.use_gpus = resources, cluster_gpus, use_gpus
        self.data_dir, self.keep_checkpoints = data_dir, keep_checkpoints
        self.max_losses, self.heartbeat_s = max_losses, heartbeat_s
        self.plugin_sources = plugin_sources or []
        # A plan that grows (tuning finals, adaptive seeds): asked for more runs when a
        # slot is free, nothing is claimable, and some result came in since the last ask.
        self.grow, self.news = grow, True
        self.owner = new_owner()
        self.summary = StudySummary(counts=store.counts(study_id))
        self.running: dict[Any, _Attempt] = {}  # Ray generator -> its run
        self.task = self.ray.remote(max_retries=0)(train_streaming)  # retries are ours

    def run(self) -> None:
        from ray.exceptions import RayError, RayTaskError

        last_beat = time.monotonic()
        try:
            while True:
                self.fill_slots()
                if not self.running:
                    break
                ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=1.0)
                self.news = self.news or bool(ready)
                for generator in ready:
                    try:
                        event = self.ray.get(next(generator))
                    except StopIteration:  # ended without a result: as if lost
                        self.lost(generator, RuntimeError("the task ended without a result"))
                    except RayTaskError as exc:  # the task body itself raised (on import)
                        self.fail(generator, str(exc))
                    except RayError as exc:  # its worker process or node was lost
                        self.lost(generator, exc)
                    else:
                        self.handle(generator, event)
                if time.monotonic() - last_beat > self.heartbeat_s:
                    for attempt in self.running.values():
                        self.store.heartbeat(self.study_id, attempt.spec.run_id, self.owner)
                    last_beat = time.monotonic()
        except BaseException:
            self.give_back()  # Ctrl-C, or the store cannot be written
            raise

    def fill_slots(self) -> None:
        """Claim and submit runs while the cluster has room for more."""
        slots = self.resources.slots(self.ray.cluster_resources(), self.use_gpus)
        while len(self.running) < slots:
            claimed = self.store.claim_next(self.study_id, self.owner)
            if claimed is None and self.grow is not None and self.news:
                self.news = False
                if added := self.grow():
                    self.events.plan_grew(added)
                    continue
            if claimed is None:
                return
            spec = claimed.with_data_dir(self.data_dir)
            self.submit(_Attempt(spec))
            self.events.run_started(spec)

    def checkpoint_path(self, run_id: str) -> Path:
        return self.store.artifact_dir(self.study_id, run_id) / "checkpoint.pt"

    def submit(self, attempt: _Attempt) -> None:
        """Submit a run, from its last checkpoint if the driver holds one."""
        spec = attempt.spec
        resume_epoch = self.store.rewind(self.study_id, spec.run_id)
        path = self.checkpoint_path(spec.run_id)
        data = path.read_bytes() if resume_epoch and path.exists() else None
        if resume_epoch and data is None:  # the file is gone: start over, cleanly
            self.store.set_checkpoint_epoch(self.study_id, spec.run_id, 0)
            resume_epoch = self.store.rewind(self.study_id, spec.run_id)
        generator = self.task.options(
            num_cpus=self.resources.cpus_per_run,
            num_gpus=self.resources.gpus(spec, self.cluster_gpus),
            name=f"actlab:{spec.run_id}",
        ).remote(spec.model_dump_json(), data, resume_epoch,
                 max(1, int(self.resources.cpus_per_run)), self.plugin_sources)
        self.running[generator] = attempt

    def handle(self, generator: Any, event: tuple[Any, ...]) -> None:
        spec = self.running[generator].spec
        kind, run_id = event[0], spec.run_id
        if kind == "started":
            log.info("%s runs on %s (pid %s)", spec.describe(), event[1], event[2])
            self.events.run_placed(spec, event[1], event[2])
            if event[3] != __version__:
                log.warning("node %s has actlab %s, the driver %s: install the same version "
                            "everywhere", event[1], event[3], __version__)
        elif kind == "epoch":
            self.store.record_epoch(self.study_id, run_id, event[1])
            self.events.epoch_finished(spec, event[1])
        elif kind == "params":
            self.store.record_params(self.study_id, run_id, event[1], event[2])
        elif kind == "layers":
            self.store.record_layers(self.study_id, run_id, event[1], event[2])
        elif kind == "checkpoint":
            self.save_checkpoint(spec, event[1], event[2])
        elif kind == "result":
            self.store.finish(self.study_id, run_id, event[1])
            self.end(generator)
            self.events.run_finished(spec, event[1])
        elif kind == "error":
            self.fail(generator, event[1])

    def save_checkpoint(self, spec: RunSpec, epoch: int, data: bytes) -> None:
        path = self.checkpoint_path(spec.run_id)
        try:
            save_checkpoint_bytes(path, data)
        except OSError as exc:
            log.warning("could not write the checkpoint %s (%s); %s would restart from "
                        "scratch if its worker were lost", path, exc, spec.describe())
        else:
            self.store.set_checkpoint_epoch(self.study_id, spec.run_id, epoch)

    def end(self, generator: Any) -> None:
        attempt = self.running.pop(generator)
        if not self.keep_checkpoints:
            self.checkpoint_path(attempt.spec.run_id).unlink(missing_ok=True)
        self.summary.ran += 1

    def fail(self, generator: Any, error: str) -> None:
        spec = self.running[generator].spec
        log.error("run %s (%s) failed:\n%s", spec.run_id, spec.describe(), error)
        self.store.fail(self.study_id, spec.run_id, error)
        self.end(generator)
        self.summary.failures.append((spec.describe(), error.strip().splitlines()[-1]))
        self.events.run_failed(spec, error)

    def lost(self, generator: Any, error: Exception) -> None:
        """The run's worker or node is gone: submit it again, or fail it after too many."""
        attempt = self.running[generator]
        attempt.lost += 1
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
        if attempt.lost > self.max_losses:
            self.fail(generator, f"its worker or node was lost {attempt.lost} times; the "
                                 f"last time: {reason}")
            return
        log.warning("%s: worker or node lost (%s); resubmitting it (loss %d of at most %d) "
                    "from its last checkpoint", attempt.spec.describe(), reason, attempt.lost,
                    self.max_losses)
        del self.running[generator]
        self.submit(attempt)

    def give_back(self) -> None:
        """Stop the tasks in flight and release their runs (they resume from their
        checkpoints on the next `actlab run`)."""
        for generator, attempt in self.running.items():
            self.ray.cancel(generator, force=True)
            try:
                self.store.release(self.study_id, attempt.spec.run_id)
            except Exception:  # the store may be what failed; the claims expire anyway
                log.debug("could not release %s", attempt.spec.run_id, exc_info=True)
