"""How ``actlab run`` (and ``actlab train``) execute a study and show its progress.

The executor is chosen here: ``serial`` (one run at a time, all threads), ``local``
(``--jobs N`` worker processes on this machine, one GPU each where there are GPUs) or
``ray`` (one Ray task per run on a cluster). All three write the same store.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from pathlib import Path
from typing import Any, Literal

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from actlab.cli.common import console, err_console

ExecutorName = Literal["serial", "local", "ray"]
COLUMNS = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
           TimeElapsedColumn())


@dataclasses.dataclass(frozen=True)
class Execution:
    """How to run a study (none of it enters a run's identity)."""

    executor: ExecutorName = "serial"
    jobs: int = 1
    threads: int | None = None  # torch threads in all (serial, local)
    runs_per_gpu: int = 1
    cpus_per_run: float = 1.0  # ray
    address: str | None = None  # ray
    retry_failed: bool = False
    data_dir: Path | None = None
    keep_checkpoints: bool = False
    cohort: int = 1  # serial, local: runs trained together as one stacked model
    cohort_memory_mb: float | None = None  # cap on a cohort's memory (None: the default)
    replan: bool = False  # replace the stored plan of a study of the same name

    @classmethod
    def choose(cls, executor: ExecutorName | None, jobs: int | None, **options: Any
               ) -> Execution:
        """Resolve defaults and reject combinations that mean nothing, naming the fix."""
        if executor is None:
            executor = "local" if (jobs or 1) > 1 or options.get("runs_per_gpu", 1) > 1 \
                else "serial"
        if executor == "serial" and (jobs or 1) > 1:
            raise typer.BadParameter("--jobs needs the local executor; drop --executor serial",
                                     param_hint="--jobs")
        if executor == "ray" and jobs is not None:
            raise typer.BadParameter("the Ray executor runs as many runs as the cluster has "
                                     "slots for; use --cpus-per-run/--runs-per-gpu instead",
                                     param_hint="--jobs")
        if executor == "ray" and options.get("cohort", 1) > 1:
            raise typer.BadParameter("cohorts run in the serial and local executors; drop "
                                     "--executor ray or --cohort", param_hint="--cohort")
        if executor != "ray" and options.get("address"):
            raise typer.BadParameter("--address is for --executor ray", param_hint="--address")
        if executor == "local" and jobs is None:
            jobs = local_gpu_jobs(options.get("runs_per_gpu", 1)) or os.cpu_count() or 1
        return cls(executor=executor, jobs=jobs or 1, **options)


def local_gpu_jobs(runs_per_gpu: int) -> int:
    """Jobs that fill this machine's GPUs with ``runs_per_gpu`` runs each (0: no GPU)."""
    from actlab.study.executors import visible_gpus

    return len(visible_gpus()) * runs_per_gpu


class ProgressEvents:
    """Draws a serial study's progress: an overall bar and the current run's epoch."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.overall: Any = None
        self.current: Any = None
        self.epochs = self.total = 0

    def study_started(self, study: Any, total: int, done: int) -> None:
        self.total = total
        self.overall = self.progress.add_task(f"study {study.name}", total=total, completed=done)

    def run_started(self, spec: Any) -> None:
        self.epochs = spec.train.epochs
        description = f"  {spec.describe()}"
        if self.current is None:
            self.current = self.progress.add_task(description, total=self.epochs)
        self.progress.reset(self.current, total=self.epochs, description=description)

    def run_placed(self, spec: Any, host: str, pid: int) -> None: ...

    def epoch_finished(self, spec: Any, metrics: Any) -> None:
        self.progress.update(
            self.current, advance=1,
            description=f"  {spec.describe()}  epoch {metrics.epoch}/{self.epochs}  "
                        f"val acc {metrics.val_acc:.3f}  {metrics.images_per_s:,.0f} img/s")

    def plan_grew(self, added: int) -> None:
        self.total += added
        self.progress.update(self.overall, total=self.total)

    def run_finished(self, spec: Any, result: Any) -> None:
        self.progress.advance(self.overall)
        if result.status == "diverged":
            self.progress.console.print(
                f"[yellow]diverged[/] {spec.describe()} (lr {spec.train.optimizer.lr:g}) in "
                f"epoch {result.diverged_epoch}: {escape(result.reason)}")

    def run_failed(self, spec: Any, error: str) -> None:
        self.progress.advance(self.overall)
        self.progress.console.print(f"[red]failed[/] {spec.describe()}: "
                                    f"{escape(error.strip().splitlines()[-1])}")


class ConcurrentProgressEvents(ProgressEvents):
    """Several runs at once (the Ray executor): one line per run in flight."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(progress)
        self.lines: dict[str, Any] = {}
        self.hosts: dict[str, str] = {}

    def run_started(self, spec: Any) -> None:
        self.lines[spec.run_id] = self.progress.add_task(f"  {spec.describe()}",
                                                         total=spec.train.epochs)

    def run_placed(self, spec: Any, host: str, pid: int) -> None:
        self.hosts[spec.run_id] = host
        self.progress.update(self.lines[spec.run_id],
                             description=f"  {spec.describe()}  on {host}")

    def epoch_finished(self, spec: Any, metrics: Any) -> None:
        self.progress.update(
            self.lines[spec.run_id], completed=metrics.epoch,
            description=f"  {spec.describe()}  on {self.hosts.get(spec.run_id, '?')}  "
                        f"val acc {metrics.val_acc:.3f}  {metrics.images_per_s:,.0f} img/s")

    def _done(self, spec: Any) -> None:
        if spec.run_id in self.lines:
            self.progress.remove_task(self.lines.pop(spec.run_id))

    def run_finished(self, spec: Any, result: Any) -> None:
        self._done(spec)
        super().run_finished(spec, result)

    def run_failed(self, spec: Any, error: str) -> None:
        self._done(spec)
        super().run_failed(spec, error)


def set_threads(threads: int | None) -> int:
    import torch

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def write_report(db: Any, studies: list[str], out: Path | None, **options: Any) -> Path:
    """Write the report of ``studies`` (default folder: beside the store) and say where."""
    from actlab.report import write_report as write

    out = out or db.path.parent / "reports" / "+".join(studies)
    with console.status("writing the report"):
        paths = write(db, studies, out, **options)
    console.print(f"report: {paths['html']} (and {paths['markdown'].name}, tables/, figures/)")
    return paths["html"]


def execute(study: Any, store_path: Path, execution: Execution, *, report: bool = False
            ) -> Any:
    """Run a study with a live progress display; returns the executor's summary."""
    from actlab.data.loader import forget_loaded_datasets
    from actlab.study.executors import check_data

    threads = set_threads(execution.threads)
    jobs = execution.jobs
    if execution.executor == "local" and jobs > threads:
        err_console.print(f"[yellow]note[/]: {jobs} jobs on {threads} thread(s): each job gets "
                          "one thread, so the machine is oversubscribed (much slower); use "
                          f"--jobs {threads} or fewer.")
    started = time.perf_counter()
    specs = study.expand()
    data_dir = str(execution.data_dir) if execution.data_dir else None
    check_data(specs, data_dir)
    if execution.executor != "serial":  # the workers load their own copies
        forget_loaded_datasets()
    # Reach the cluster before the store is touched: a wrong address changes nothing.
    started_ray = execution.executor == "ray" and _connect_ray(execution.address)
    try:
        return _execute_with_store(study, store_path, execution, report, threads, data_dir,
                                   specs, started)
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _connect_ray(address: str | None) -> bool:
    from actlab.study.ray_executor import connect

    with console.status("connecting to Ray"):
        return connect(address)


def _execute_with_store(study: Any, store_path: Path, execution: Execution, report: bool,
                        threads: int, data_dir: str | None, specs: list[Any],
                        started: float) -> Any:
    from actlab.progress import set_progress_factory
    from actlab.study import Store
    from actlab.study.executors import interrupted_by_termination

    with Store(store_path) as db:
        execution = _jobs_for_the_runs_left(db, study, specs, execution)
        jobs = execution.jobs
        with Progress(*COLUMNS, console=console, transient=False) as progress:
            # Long data work inside runs (decoding an image folder) shows as a task here.
            set_progress_factory(functools.partial(_task_in, progress))
            try:
                with interrupted_by_termination():
                    summary = _run(db, study, execution, progress, threads, data_dir)
            except KeyboardInterrupt:
                progress.stop()
                err_console.print("[yellow]interrupted[/]: finished runs are stored; run the "
                                  "same command again to resume.")
                raise typer.Exit(130) from None
            finally:
                set_progress_factory(None)
        counts = summary.counts
        how = {"serial": f"{threads} threads",
               "local": f"{threads} threads in {jobs} jobs",
               "ray": f"Ray, {execution.cpus_per_run:g} CPU per run"}[execution.executor]
        if execution.cohort > 1:
            how += f", cohorts of up to {execution.cohort}"
        console.print(
            f"study [bold]{study.name}[/]: {counts['completed']} completed, "
            f"{counts['diverged']} diverged, {counts['failed']} failed "
            f"({summary.ran} run now, {time.perf_counter() - started:.0f} s, {how}); "
            f"store {db.path}")
        if report:
            write_report(db, [study.name], None)
        summary.runs = db.study(study.name).records()
    if counts["failed"]:
        err_console.print(f"[red]{counts['failed']} run(s) failed[/]; see `actlab report "
                          f"{study.name}` for their errors, then fix and use --retry-failed.")
        raise typer.Exit(1)
    return summary


def _jobs_for_the_runs_left(db: Any, study: Any, specs: list[Any], execution: Execution
                            ) -> Execution:
    """No more local workers than runs left to run (each costs a process and a copy of
    the data); their threads go to the workers that have a run. A plan that grows
    (tuning finals, adaptive seeds) is not capped: the runs left now are not all it will
    have, and a resumed worker would otherwise train with other threads than the run's
    first epochs had."""
    if execution.executor != "local" or study.grows:
        return execution
    done = {"completed", "diverged"} | (set() if execution.retry_failed else {"failed"})
    statuses = db.statuses(study.name)
    left = sum(statuses.get(spec.run_id) not in done for spec in specs)
    if execution.jobs <= max(1, left):
        return execution
    console.print(f"[yellow]note[/]: {left} run(s) left: {max(1, left)} job(s) instead of "
                  f"{execution.jobs}.")
    return dataclasses.replace(execution, jobs=max(1, left))


def _run(db: Any, study: Any, execution: Execution, progress: Progress, threads: int,
         data_dir: str | None) -> Any:
    from actlab.study.executors import run_study, run_study_local

    common = {"retry_failed": execution.retry_failed, "data_dir": data_dir,
              "keep_checkpoints": execution.keep_checkpoints, "replan": execution.replan}
    if execution.executor == "serial":
        return run_study(db, study, ProgressEvents(progress), cohort=execution.cohort,
                         cohort_memory_mb=execution.cohort_memory_mb, **common)
    if execution.executor == "ray":
        from actlab.study.ray_executor import RayResources, run_study_ray

        return run_study_ray(db, study, ConcurrentProgressEvents(progress),
                             address=execution.address, resources=RayResources(
                                 execution.cpus_per_run, execution.runs_per_gpu), **common)
    jobs = execution.jobs
    overall = progress.add_task(f"study {study.name} ({jobs} jobs)", total=len(study.expand()))

    def show(counts: dict[str, int]) -> None:
        done = counts["completed"] + counts["diverged"] + counts["failed"]
        progress.update(overall, completed=done, total=sum(counts.values()), description=(
            f"study {study.name} ({jobs} jobs, {counts['running']} running)"))

    return run_study_local(db, study, jobs, max(1, threads // jobs), show,
                           cohort=execution.cohort,
                           cohort_memory_mb=execution.cohort_memory_mb, **common)


def _task_in(progress: Progress, description: str, total: int | None) -> Any:
    """A temporary task in an already running progress display."""
    import contextlib

    @contextlib.contextmanager
    def task() -> Any:
        handle = progress.add_task(f"  {description}", total=total)
        try:
            yield lambda amount=1: progress.advance(handle, amount)
        finally:
            progress.remove_task(handle)

    return task()
