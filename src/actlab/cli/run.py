"""``actlab run``, ``train``, ``lr-find`` and ``plan``: validating and running studies."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from actlab.cli.common import (
    DataDirOption,
    LimitOption,
    ModelOptionsOption,
    PluginOption,
    StoreOption,
    app,
    console,
    err_console,
    handle_errors,
    load_plugins,
    parse_options,
    store_path,
)
from actlab.cli.execute import Execution, ExecutorName, execute, set_threads

ExecutorOption = typer.Option(
    None, "--executor", help="serial (one run at a time), local (--jobs processes) or ray "
                             "(a Ray cluster, see docs/cluster.md) [default: serial, or local "
                             "with --jobs > 1].")



@app.command()
@handle_errors
def run(
    study_file: Path = typer.Argument(..., help="Study file (YAML)."),
    store: Path | None = StoreOption,
    report: bool = typer.Option(False, "--report", help="Write the report when done."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed runs again."),
    replan: bool = typer.Option(
        False, "--replan", help="Replace the plan of a stored study of the same name with "
                                "this file's (finished runs are kept)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Run a plan of more than 10,000 runs."),
    threads: int | None = typer.Option(None, min=1,
                                       help="Torch threads in all, split between the "
                                       "jobs [default: all cores]."),
    data_dir: Path | None = DataDirOption,
    keep_checkpoints: bool = typer.Option(
        False, "--keep-checkpoints", help="Keep each run's last checkpoint when it ends."),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", min=1, help="Runs in parallel on this machine (worker "
                                          "processes, one GPU each where there are GPUs) "
                                          "[default: 1; with --executor local: one per core, "
                                          "or GPUs x --runs-per-gpu]."),
    executor: ExecutorName | None = ExecutorOption,
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster to use: auto, host:port or ray://host:port "
                                "[default: $RAY_ADDRESS, else a local Ray instance]."),
    cpus_per_run: float = typer.Option(1.0, "--cpus-per-run", min=0.01,
                                       help="CPUs (and torch threads) each Ray task asks for."),
    runs_per_gpu: int = typer.Option(1, "--runs-per-gpu", min=1,
                                     help="Runs sharing one GPU (small models): local jobs "
                                          "per GPU, or a 1/N GPU request per Ray task."),
    cohort: int = typer.Option(1, "--cohort", min=1,
                               help="Train up to N runs that differ only in seed and "
                                    "initializer as one stacked model (vmap; for GPUs: on "
                                    "CPU it measured slower than one at a time)."),
    cohort_memory: float | None = typer.Option(
        None, "--cohort-memory", min=1.0,
        help="MiB a cohort may use; cohorts are cut to fit [default: 80% of the free GPU "
             "memory; no limit on CPU]."),
    plugin: list[str] = PluginOption,
) -> None:
    """Run every cell of a study that is not finished yet (re-running resumes)."""
    from actlab.study.plan import LARGE_PLAN, load_study

    execution = Execution.choose(
        executor, jobs, threads=threads, runs_per_gpu=runs_per_gpu, cpus_per_run=cpus_per_run,
        address=address, retry_failed=retry_failed, replan=replan, data_dir=data_dir,
        keep_checkpoints=keep_checkpoints, cohort=cohort, cohort_memory_mb=cohort_memory)
    study = load_study(study_file, max_runs=None if yes else LARGE_PLAN, plugins=plugin)
    execute(study, store_path(store), execution, report=report)


@app.command("lr-find")
@handle_errors
def lr_find(
    model: str = typer.Option("lenet5", "--model", help="A registered model."),
    act: str = typer.Option("relu", "--act", help="Activation."),
    init: str = typer.Option("default", "--init", help="Initializer."),
    dataset: str = typer.Option("fashion_mnist", "--dataset", help="A registered dataset."),
    batch_size: int = typer.Option(128, "--batch-size"),
    optimizer: str = typer.Option("sgd", "--optimizer", help="sgd, adam, adamw or rmsprop."),
    start: float = typer.Option(1e-6, "--start", help="First learning rate."),
    end: float = typer.Option(10.0, "--end", help="Last learning rate."),
    steps: int = typer.Option(100, "--steps", help="Optimizer steps (lr grows geometrically)."),
    seed: int = typer.Option(0, "--seed"),
    option: list[str] = ModelOptionsOption,
    threads: int | None = typer.Option(None, min=1,
                                       help="Torch threads [default: all cores]."),
    data_dir: Path | None = DataDirOption,
    out: Path = typer.Option(Path("lr-find.png"), "--out", help="Plot (PNG)."),
    plugin: list[str] = PluginOption,
) -> None:
    """Learning-rate range test: loss against an exponentially growing lr, with the
    suggested range (Smith 2017); writes a plot and a CSV beside it."""
    import pandas as pd

    from actlab.report.figures import lr_find_figure, save
    from actlab.spec import RunSpec
    from actlab.train.lr_find import lr_range_test

    set_threads(threads)
    load_plugins(plugin)
    try:
        spec = RunSpec.model_validate({
            "model": model, "model_options": parse_options(option), "act": act,
            "init": init, "seed": seed,
            "data": {"name": dataset, "data_dir": str(data_dir) if data_dir else None},
            "train": {"batch_size": batch_size, "optimizer": {"name": optimizer, "lr": start}},
        })
        result = lr_range_test(spec, start, end, steps)
    except ValueError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    low, high = result.suggested_range
    save(lr_find_figure(result.lrs, result.losses, result.smoothed, (low, high),
                        title=f"{spec.describe()} on {dataset}"), out,
         formats=(out.suffix.lstrip(".") or "png",))
    pd.DataFrame({"lr": result.lrs, "loss": result.losses, "smoothed": result.smoothed}
                 ).to_csv(out.with_suffix(".csv"), index=False)
    console.print(f"steepest descent at lr {result.suggested_lr:.3g}; minimum loss at "
                  f"{result.min_loss_lr:.3g}; suggested range {low:.3g} - {high:.3g}"
                  f"{' (stopped when the loss blew up)' if result.stopped_early else ''}")
    console.print(f"plot: {out}; values: {out.with_suffix('.csv')}")


@app.command()
@handle_errors
def train(
    model: str = typer.Option("lenet5", "--model", help="A registered model."),
    act: str = typer.Option("relu", "--act", help="Activation, e.g. 'tact' or "
                                                   "'leaky_relu(slope=0.3)'."),
    init: str = typer.Option("default", "--init", help="Initializer, e.g. he_normal."),
    dataset: str = typer.Option("fashion_mnist", "--dataset", help="A registered dataset."),
    epochs: int = typer.Option(10, "--epochs"),
    batch_size: int = typer.Option(128, "--batch-size"),
    optimizer: str = typer.Option("sgd", "--optimizer", help="sgd, adam, adamw or rmsprop."),
    lr: float = typer.Option(0.01, "--lr"),
    schedule: str = typer.Option("fixed", "--schedule",
                                 help="e.g. cosine, one_cycle, 'triangular(max_lr=0.1)'."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    augment: str = typer.Option("none", "--augment", help="none, flip or standard."),
    train_per_class: int | None = typer.Option(None, "--train-per-class",
                                               help="Keep this many training images per class."),
    option: list[str] = ModelOptionsOption,
    name: str | None = typer.Option(None, "--name", help="Study name [default: from the "
                                                          "settings]."),
    store: Path | None = StoreOption,
    threads: int | None = typer.Option(None, min=1,
                                       help="Torch threads [default: all cores]."),
    data_dir: Path | None = DataDirOption,
    plugin: list[str] = PluginOption,
) -> None:
    """Train one run from the command line, stored as a one-cell study (re-running the
    same command resumes or reuses it)."""
    from actlab.study import parse_study

    settings = {
        "model": model, "model_options": parse_options(option), "act": act,
        "init": init,
        "data": {"name": dataset, "augment": augment, "train_per_class": train_per_class},
        "train": {"epochs": epochs, "batch_size": batch_size, "schedule": schedule,
                  "device": device, "optimizer": {"name": optimizer, "lr": lr}},
        "seeds": [seed],
        "plugins": [source.model_dump() for source in load_plugins(plugin)],
    }
    label = name or "train-" + "-".join(
        "".join(c if c.isalnum() or c in "._" else "_" for c in part)
        for part in (model, act, init, dataset, f"s{seed}"))[:90]
    study = parse_study({"name": label, **settings}, source="actlab train")
    summary = execute(study, store_path(store),
                      Execution(threads=threads, data_dir=data_dir))
    row = summary.runs[0]
    metrics = [(key, row.get(key)) for key in ("test_acc", "test_top3", "test_loss",
                                               "test_macro_f1", "best_val_epoch")]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics if v is not None and v == v)
    console.print(f"[bold]{row['status']}[/] {study.expand()[0].describe()}: {shown}")


@app.command()
@handle_errors
def plan(study_file: Path = typer.Argument(..., help="Study file (YAML)."),
         store: Path | None = StoreOption,
         yes: bool = typer.Option(False, "--yes", "-y",
                                  help="List a plan of more than 10,000 runs."),
         limit: int = LimitOption,
         plugin: list[str] = PluginOption) -> None:
    """Validate a study file and show its cells and what is already done."""
    from actlab.cli.tables import print_runs, print_seeding, print_tuning
    from actlab.study import Store
    from actlab.study.cells import CELL_COLUMNS, cell_labels
    from actlab.study.frames import epoch_seconds
    from actlab.study.phases import current_plan
    from actlab.study.plan import LARGE_PLAN, load_study

    study = load_study(study_file, max_runs=None if yes else LARGE_PLAN, plugins=plugin)
    specs = study.expand()
    gc.freeze()  # the specs live to the end: labelling them need not re-scan them (-30%)
    done: dict[str, str] = {}
    stored_plan: set[str] | None = None
    history: dict[tuple[str, str], float] = {}
    path = store_path(store)
    if path.exists():
        with Store(path, read_only=True) as db:
            done = db.statuses(study.name)
            stored_plan = set(db.statuses(study.name, in_plan=True)) if done else None
            history = epoch_seconds(db.conn)
            specs = current_plan(db, study)  # with its decided finals, adaptive seeds
            if study.tune is not None:
                print_tuning(console, db, study)
            if study.adaptive is not None:
                print_seeding(console, db, study)
    elif study.tune is not None:
        print_tuning(console, None, study)
    elif study.adaptive is not None:
        print_seeding(console, None, study)
    rows = [{"#": index, **cell, "role": study.role_of(spec) or "",
             "run id": spec.run_id, "status": done.get(spec.run_id, "new")}
            for index, (spec, cell) in enumerate(zip(specs, cell_labels(specs), strict=True), 1)]
    columns = ("#", *CELL_COLUMNS, "role", "run id", "status")
    print_runs(console, f"study {study.name}: {len(specs)} runs", rows, columns,
               ("#", "status", "act", "role", "model", "init", "lr", "schedule", "seed",
                "corruption",
                "dataset", "optimizer", "setting", "run id"), keep=("#", "run id", "status"),
               limit=limit)
    todo = [s for s in specs if done.get(s.run_id) not in ("completed", "diverged")]
    console.print(f"{len(specs) - len(todo)} of {len(specs)} runs finished; "
                  f"{_estimate(todo, history)}")
    if stored_plan is not None and stored_plan != {spec.run_id for spec in specs}:
        console.print(f"[yellow]note[/]: the store's study '{study.name}' has another plan "
                      f"({len(stored_plan)} runs); `actlab run` refuses this file unless "
                      "given --replan (or give the file another name).")


def _estimate(todo: list[Any], history: dict[tuple[str, str], float]) -> str:
    from actlab.study.progress import format_duration, seconds_for

    if not todo:
        return "nothing left to run"
    seconds = seconds_for([(spec.model, spec.data.name, spec.train.epochs) for spec in todo],
                          history)
    if seconds is None:
        return "no finished runs in this store to estimate the time from"
    return (f"about {format_duration(seconds)} for the {len(todo)} left (serial, from the "
            "epoch times of finished runs in this store)")

