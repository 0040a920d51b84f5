"""The ``actlab`` command line.

The CLI prints; the library logs. Every expected error (a bad study file, an unknown
name, a missing dataset, an unusable store) is printed as one clear message with a
non-zero exit status, never as a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from actlab.cli_run import (
    Execution,
    ExecutorName,
    console,
    err_console,
    execute,
    set_threads,
    write_report,
)
from actlab.components import ComponentSpecError
from actlab.registry import UnknownNameError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Comparative studies of activation functions and weight initializers.")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_STORE = Path("results/actlab.db")

StoreOption = typer.Option(
    None, "--store", envvar="ACTLAB_STORE",
    help=f"SQLite run store [default: {DEFAULT_STORE}, or $ACTLAB_STORE].")


DataDirOption = typer.Option(
    None, "--data-dir",
    help="Data directory; overrides the study file's data.data_dir and $ACTLAB_DATA "
         "[default: ~/.cache/actlab/data].")


ModelOptionsOption = typer.Option(
    [], "--option", "-o", help="Model option as key=value (repeatable), e.g. -o width=32.")


def _store_path(store: Path | None) -> Path:
    return store if store is not None else DEFAULT_STORE


def _expected_errors() -> tuple[type[BaseException], ...]:
    from actlab.data import DatasetError
    from actlab.study import StoreError, StudyError
    from actlab.study.ray_executor import RayExecutorError

    return (StudyError, StoreError, DatasetError, UnknownNameError, ComponentSpecError,
            RayExecutorError)


def handle_errors(func: F) -> F:
    """Turn expected errors into a one-message exit with status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _expected_errors() as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")
         ) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_path=False)])


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
    threads: int | None = typer.Option(None, help="Torch threads in all, split between the "
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
) -> None:
    """Run every cell of a study that is not finished yet (re-running resumes)."""
    from actlab.study import load_study

    execution = Execution.choose(
        executor, jobs, threads=threads, runs_per_gpu=runs_per_gpu, cpus_per_run=cpus_per_run,
        address=address, retry_failed=retry_failed, data_dir=data_dir,
        keep_checkpoints=keep_checkpoints, cohort=cohort, cohort_memory_mb=cohort_memory)
    execute(load_study(study_file), _store_path(store), execution, report=report)


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
    threads: int | None = typer.Option(None, help="Torch threads [default: all cores]."),
    data_dir: Path | None = DataDirOption,
    out: Path = typer.Option(Path("lr-find.png"), "--out", help="Plot (PNG)."),
) -> None:
    """Learning-rate range test: loss against an exponentially growing lr, with the
    suggested range (Smith 2017); writes a plot and a CSV beside it."""
    import pandas as pd

    from actlab.report.figures import lr_find_figure, save
    from actlab.study import RunSpec
    from actlab.train.lr_find import lr_range_test

    set_threads(threads)
    try:
        spec = RunSpec.model_validate({
            "model": model, "model_options": _parse_model_options(option), "act": act,
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
    threads: int | None = typer.Option(None, help="Torch threads [default: all cores]."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Train one run from the command line, stored as a one-cell study (re-running the
    same command resumes or reuses it)."""
    from actlab.study import parse_study

    settings = {
        "model": model, "model_options": _parse_model_options(option), "act": act,
        "init": init,
        "data": {"name": dataset, "augment": augment, "train_per_class": train_per_class},
        "train": {"epochs": epochs, "batch_size": batch_size, "schedule": schedule,
                  "device": device, "optimizer": {"name": optimizer, "lr": lr}},
        "seeds": [seed],
    }
    label = name or "train-" + "-".join(
        "".join(c if c.isalnum() or c in "._" else "_" for c in part)
        for part in (model, act, init, dataset, f"s{seed}"))[:90]
    study = parse_study({"name": label, **settings}, source="actlab train")
    summary = execute(study, _store_path(store),
                      Execution(threads=threads, data_dir=data_dir))
    row = summary.runs.iloc[0]
    metrics = [(key, row.get(key)) for key in ("test_acc", "test_top3", "test_loss",
                                               "test_macro_f1", "best_val_epoch")]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics if v is not None and v == v)
    console.print(f"[bold]{row['status']}[/] {study.expand()[0].describe()}: {shown}")


@app.command()
@handle_errors
def report(
    studies: list[str] = typer.Argument(..., help="Study name(s) (as in the file's `name:`); "
                                                  "several are compared in one report."),
    store: Path | None = StoreOption,
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Output folder [default: beside the store, "
                                         "reports/STUDY]."),
    metric: str = typer.Option("test_acc", "--metric", "-m",
                               help="Final metric to compare: test_acc, best_test_acc, "
                                    "test_loss, test_macro_f1, ..."),
    baseline: str | None = typer.Option(
        None, "--baseline", help="Baseline cell for comparisons, e.g. 'act=relu,init=he_normal' "
                                 "[default: the first of each axis in the plan]."),
    self_contained: bool = typer.Option(False, "--self-contained",
                                        help="Embed the figures in index.html (one file)."),
    test: str = typer.Option("wilcoxon", "--test",
                             help="Test against the baseline: wilcoxon (signed-rank, paired "
                                  "by seed) or welch (unpaired t)."),
    theory: bool = typer.Option(True, "--theory/--no-theory",
                                help="Include the theory section (catalog, mean-field phase, "
                                     "signal propagation at init through the study's models, "
                                     "learned activation functions)."),
    svg: bool = typer.Option(True, "--svg/--no-svg",
                             help="Also write every figure as SVG (vector, for papers); "
                                  "--no-svg about halves the time spent drawing."),
) -> None:
    """Write a report: index.html, report.md, tables/ (Markdown, LaTeX, CSV), figures/
    (PNG, and SVG unless --no-svg), runs.csv and epochs.csv."""
    from actlab.report.build import ReportError
    from actlab.study import Store

    path = _store_path(store)
    if not path.exists():
        err_console.print(f"[bold red]error:[/] no run store at {path}; run a study first "
                          "(`actlab run STUDY.yaml`) or pass --store.")
        raise typer.Exit(2)
    with Store(path) as db:
        for name in studies:
            db.study_id(name)  # an unknown name is a clear error before any work
        try:
            write_report(db, studies, out, metric=metric, test=test,
                         baseline=_parse_baseline(baseline), self_contained=self_contained,
                         theory=theory, svg=svg)
        except ReportError as exc:
            raise typer.BadParameter(str(exc)) from None


def _parse_baseline(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    baseline: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{part!r} is not axis=value (e.g. act=relu,init=he_normal)",
                                     param_hint="--baseline")
        value = value.strip()
        try:
            baseline[key.strip()] = float(value) if key.strip() == "lr" else value
        except ValueError:
            raise typer.BadParameter(f"lr={value!r} is not a number",
                                     param_hint="--baseline") from None
    return baseline


@app.command()
@handle_errors
def plan(study_file: Path = typer.Argument(..., help="Study file (YAML)."),
         store: Path | None = StoreOption) -> None:
    """Validate a study file and show its cells and what is already done."""
    from actlab.study import Store, load_study

    study = load_study(study_file)
    specs = study.expand()
    done: dict[str, str] = {}
    history: dict[tuple[str, str], float] = {}
    path = _store_path(store)
    if path.exists():
        with Store(path) as db:
            row = db.conn.execute("SELECT id FROM studies WHERE name=?", (study.name,)).fetchone()
            if row is not None:
                done = {r["run_id"]: r["status"] for r in db.conn.execute(
                    "SELECT run_id, status FROM runs WHERE study_id=?", (row["id"],))}
            history = db.epoch_seconds()
    table = Table(title=f"study {study.name}: {len(specs)} runs")
    for column in ("#", "model", "act", "init", "seed", "run id", "status"):
        table.add_column(column)
    for i, spec in enumerate(specs, 1):
        table.add_row(str(i), spec.model_label, spec.act, spec.init, str(spec.seed), spec.run_id,
                      done.get(spec.run_id, "new"))
    console.print(table)
    todo = [s for s in specs if done.get(s.run_id) not in ("completed", "diverged")]
    console.print(f"{len(specs) - len(todo)} of {len(specs)} runs finished; "
                  f"{_estimate(todo, history)}")


def _estimate(todo: list[Any], history: dict[tuple[str, str], float]) -> str:
    from actlab.study.progress import format_duration, seconds_for

    if not todo:
        return "nothing left to run"
    seconds = seconds_for([(spec, spec.train.epochs) for spec in todo], history)
    if seconds is None:
        return "no finished runs in this store to estimate the time from"
    return (f"about {format_duration(seconds)} for the {len(todo)} left (serial, from the "
            "epoch times of finished runs in this store)")


@app.command()
@handle_errors
def status(study: str | None = typer.Argument(None, help="Study name [default: all]."),
           store: Path | None = StoreOption) -> None:
    """Progress of the stored studies: runs by state, the runs in flight, time left."""
    from actlab.study import Store
    from actlab.study.progress import format_duration, study_progress

    path = _store_path(store)
    if not path.exists():
        console.print(f"no run store at {path} yet")
        return
    with Store(path) as db:
        studies = [study_progress(db, name) for name in ([study] if study else db.studies())]
    states = ("pending", "running", "completed", "diverged", "failed")
    table = Table(title=str(path))
    for column in ("study", *states, "done", "left"):
        table.add_column(column, justify="left" if column == "study" else "right")
    for progress in studies:
        left = ("-" if progress.epochs_left == 0 else "?" if progress.seconds_left is None
                else f"~{format_duration(progress.seconds_left)}")
        table.add_row(progress.name, *(str(progress.counts[k]) for k in states),
                      f"{progress.finished}/{progress.total}", left)
    console.print(table)
    if study is None:
        return
    (progress,) = studies
    if progress.running:
        flight = Table(title="in flight")
        flight.add_column("run")
        flight.add_column("run id", no_wrap=True, min_width=16)
        for column in ("epoch", "owner", "heartbeat"):
            flight.add_column(column)
        for run in progress.running:
            beat = f"{run.heartbeat_age_s:.0f} s ago" + (" [yellow]expired[/]" if run.stale
                                                          else "")
            flight.add_row(run.label, run.run_id, f"{run.epoch}/{run.epochs}", run.owner, beat)
        console.print(flight)
        if any(run.stale for run in progress.running):
            console.print("[yellow]expired[/]: the owner has died or gone silent; the next "
                          "`actlab run` of this study takes the run over (from its last "
                          "checkpoint)")
    if progress.epochs_left and progress.seconds_left is None:
        console.print("time left: no finished runs in this store to estimate it from yet")
    elif progress.epochs_left:
        at_once = max(1, sum(not run.stale for run in progress.running))
        console.print(f"time left: about {format_duration(progress.seconds_left)} for "
                      f"{progress.epochs_left} epochs, {at_once} run(s) at a time (from the "
                      "epoch times of finished runs in this store)")


def _open_existing(store: Path | None) -> Any:
    from actlab.study import Store

    path = _store_path(store)
    if not path.exists():
        err_console.print(f"[bold red]error:[/] no run store at {path}; run a study first "
                          "(`actlab run STUDY.yaml`) or pass --store.")
        raise typer.Exit(2)
    return Store(path)


RUN_COLUMNS = ("model", "act", "init", "seed", "status", "test_acc", "test_loss",
               "best_val_epoch", "diverged_epoch", "wall_time", "run_id")


@app.command()
@handle_errors
def runs(
    study: str = typer.Argument(..., help="Study name."),
    store: Path | None = StoreOption,
    where: list[str] = typer.Option(
        [], "--where", "-w", help="Filter as column=value (repeatable), e.g. -w act=mish "
                                  "-w status=diverged."),
    columns: str = typer.Option(",".join(RUN_COLUMNS), "--columns",
                                help="Comma-separated columns to show."),
) -> None:
    """The runs of a study as a table (filterable)."""
    with _open_existing(store) as db:
        frame = db.study(study).runs()
    for condition in where:
        key, sep, value = condition.partition("=")
        if not sep or key not in frame.columns:
            err_console.print(f"[bold red]error:[/] cannot filter on '{condition}'; columns: "
                              f"{', '.join(frame.columns)}")
            raise typer.Exit(2)
        frame = frame[frame[key].astype(str) == value]
    chosen = [c.strip() for c in columns.split(",") if c.strip() in frame.columns]
    table = Table(title=f"{study}: {len(frame)} run(s)")
    for column in chosen:
        table.add_column(column)
    for _, row in frame.iterrows():
        table.add_row(*(_cell(row[c]) for c in chosen))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)


@app.command()
@handle_errors
def export(
    study: str = typer.Argument(..., help="Study name."),
    store: Path | None = StoreOption,
    fmt: str = typer.Option("csv", "--format", "-f",
                            help="csv, jsonl, parquet (tables), tensorboard (event files per "
                                 "run) or mlflow (runs in an MLflow tracking store)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Folder [default: exports/STUDY beside the store]."),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI [default: sqlite:///OUT/mlflow.db]."),
) -> None:
    """Write a study's runs, epochs, params and layers tables as files, or export its
    runs to TensorBoard or MLflow."""
    formats = ("csv", "jsonl", "parquet", "tensorboard", "mlflow")
    if fmt not in formats:
        err_console.print(f"[bold red]error:[/] unknown format '{fmt}'; use "
                          f"{', '.join(formats)}")
        raise typer.Exit(2)
    with _open_existing(store) as db:
        view = db.study(study)
        folder = out or db.path.parent / "exports" / study
        if fmt in ("tensorboard", "mlflow"):
            _export_tracker(view, fmt, folder, tracking_uri)
            return
        frames = {"runs": view.runs(), "epochs": view.epochs(), "params": view.params(),
                  "layers": view.layers()}
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        path = folder / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            try:
                frame.to_parquet(path, index=False)
            except ImportError:
                err_console.print("[bold red]error:[/] parquet needs pyarrow "
                                  "(`pip install pyarrow`); csv and jsonl need nothing")
                raise typer.Exit(2) from None
    console.print(f"exported {', '.join(f'{n} ({len(f)} rows)' for n, f in frames.items())} "
                  f"to {folder}")


def _export_tracker(view: Any, fmt: str, folder: Path, tracking_uri: str | None) -> None:
    from actlab.report.exporters import ExportError, export_mlflow, export_tensorboard

    try:
        if fmt == "tensorboard":
            count = export_tensorboard(view, folder)
            console.print(f"exported {count} runs to {folder}; view them with "
                          f"`tensorboard --logdir {folder}`")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            uri = tracking_uri or f"sqlite:///{(folder / 'mlflow.db').resolve()}"
            count = export_mlflow(view, uri)
            console.print(f"exported {count} runs to MLflow at {uri} (experiment "
                          f"{view.name}); view them with `mlflow ui --backend-store-uri {uri}`")
    except ExportError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


@app.command()
@handle_errors
def delete(
    study: str = typer.Argument(..., help="Study name."),
    store: Path | None = StoreOption,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a study, its runs and their files from the store."""
    with _open_existing(store) as db:
        counts = db.study(study).counts()
        total = sum(counts.values())
        if not yes and not typer.confirm(f"delete study '{study}' and its {total} run(s) "
                                         f"from {db.path}?"):
            err_console.print("nothing deleted")
            raise typer.Exit(1)
        deleted = db.delete_study(study)
    console.print(f"deleted study '{study}' ({deleted} runs)")


@app.command()
@handle_errors
def theory(
    acts: str | None = typer.Option(None, "--acts", help="Comma-separated activations "
                                    "[default: relu, leaky_relu, elu, selu, gelu, silu, mish, "
                                    "tanh, sigmoid, softplus]."),
    inits: str | None = typer.Option(None, "--inits", help="Comma-separated initializers "
                                     "[default: he_normal, xavier_normal(gain=1.0), "
                                     "lecun_normal, orthogonal, normal]."),
    out: Path = typer.Option(Path("results/theory"), "--out", "-o", help="Output folder."),
    depth: int = typer.Option(50, "--depth", min=1, help="Layers of the plain network."),
    width: int = typer.Option(256, "--width", min=1, help="Its width (units or channels)."),
    kind: str = typer.Option("fc", "--kind", help="fc (fully connected) or conv (3x3)."),
    svg: bool = typer.Option(True, "--svg/--no-svg",
                             help="Also write every figure as SVG (vector, for papers)."),
) -> None:
    """Theory without training: the AF catalog, f and f', signal propagation at init per
    AF x WI, escape depths and mean-field phase diagrams (index.html, report.md)."""
    from actlab.activations import resolve_act
    from actlab.inits import resolve_init
    from actlab.theory.report import DEFAULT_ACTS, DEFAULT_INITS, write_theory

    if kind not in ("fc", "conv"):
        raise typer.BadParameter(f"{kind!r} is not fc or conv", param_hint="--kind")
    act_list = _split_components(acts) or list(DEFAULT_ACTS)
    init_list = _split_components(inits) or list(DEFAULT_INITS)
    for act in act_list:
        resolve_act(act)  # unknown names: a clear error before any work
    for init in init_list:
        resolve_init(init)
    with console.status("computing the theory report"):
        paths = write_theory(out, act_list, init_list, depth, width, kind, svg=svg)
    console.print(f"theory: {paths['html']} (and {paths['markdown'].name}, tables/, figures/)")


def _split_components(text: str | None) -> list[str]:
    """Split 'relu,leaky_relu(slope=0.3),tanh' at the commas outside parentheses."""
    if not text:
        return []
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [p for p in parts if p]


@app.command("list")
@handle_errors
def list_(what: str = typer.Argument(..., help="activations | inits | models | datasets | "
                                                "schedules"),
          pattern: str = typer.Argument("*", help="Wildcard filter, e.g. '*relu*'."),
          details: bool = typer.Option(False, "--details",
                                       help="Activations: formula, properties, gains.")
          ) -> None:
    """List a registry's names (with aliases)."""
    registries = _registries()
    if what not in registries:
        err_console.print(f"[bold red]error:[/] cannot list '{what}'; choose from "
                          f"{', '.join(registries)}")
        raise typer.Exit(2)
    if details and what == "activations":
        _activation_details(pattern)
        return
    registry = registries[what]
    table = Table(title=f"{registry.kind}s")
    table.add_column("name")
    table.add_column("aliases")
    table.add_column("description")
    for name in registry.list(pattern):
        entry = registry.entry(name)
        doc = (entry.factory.__doc__ or "").strip().splitlines()
        description = str(entry.meta.get("reference", "")) or (doc[0] if doc else "")
        table.add_row(name, ", ".join(entry.aliases), description)
    console.print(table)


def _activation_details(pattern: str) -> None:
    """One block per activation (readable at any terminal width)."""
    from actlab.activations import ACTIVATIONS, matched_gain, resolve_act, torch_gain

    for name in ACTIVATIONS.list(pattern):
        entry = ACTIVATIONS.entry(name)
        props = entry.factory.properties
        flags = [flag for flag, on in (("monotonic", props.monotonic), ("smooth", props.smooth),
                                       ("bounded", props.bounded),
                                       ("zero-centred", props.zero_centred)) if on]
        try:
            torch_value = f"{torch_gain(name):.4f}"
        except ValueError:
            torch_value = "none (use gain: matched)"
        low, high = props.output_range
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        for key, value in (
            ("formula", props.formula),
            ("learnable", ", ".join(props.learnable) or "none"),
            ("range", f"[{low:g}, {high:g}]"),
            ("properties", ", ".join(flags) or "none of monotonic, smooth, bounded, zero-centred"),
            ("matched gain", f"{matched_gain(resolve_act(name)):.4f}"),
            ("torch gain", torch_value),
            ("reference", props.reference or "-"),
        ):
            grid.add_row(key, value)
        aliases = f" (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
        console.print(f"[bold]{name}[/]{aliases}")
        console.print(grid)
        console.print()


models_app = typer.Typer(no_args_is_help=True, help="Describe the model zoo.")
app.add_typer(models_app, name="models")



def _parse_model_options(pairs: list[str]) -> dict[str, Any]:
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            err_console.print(f"[bold red]error:[/] model option '{pair}' is not key=value, "
                              "e.g. -o width=32")
            raise typer.Exit(2)
        options[key.strip()] = yaml.safe_load(value)
    return options


def _describe(name: str, act: str, classes: int, channels: int, size: int,
              options: dict[str, Any]) -> Any:
    from actlab.models.info import describe_model

    try:
        return describe_model(name, act=act, num_classes=classes, in_channels=channels,
                              image_size=size, **options)
    except ValueError as exc:
        if isinstance(exc, ComponentSpecError):
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


@models_app.command("show")
@handle_errors
def models_show(
    name: str = typer.Argument(..., help="A registered model, e.g. resnet18."),
    act: str = typer.Option("relu", "--act", help="Activation, e.g. mish or 'tact(alpha=1)'."),
    classes: int = typer.Option(10, "--classes", help="Number of classes."),
    channels: int = typer.Option(3, "--channels", help="Input channels."),
    size: int = typer.Option(32, "--size", help="Input height = width in pixels."),
    option: list[str] = ModelOptionsOption,
) -> None:
    """Parameters, multiply-accumulates and activation sites of one model."""
    info = _describe(name, act, classes, channels, size, _parse_model_options(option))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    fixed = ", ".join(info.fixed_sites) if info.fixed_sites else "none"
    for key, value in (
        ("input", f"{info.in_channels} x {info.image_size} x {info.image_size}, "
                  f"{info.num_classes} classes"),
        ("activation", info.act),
        ("parameters", f"{info.parameters:,}"),
        ("  of which activation", f"{info.activation_parameters:,}"),
        ("MACs per image", f"{info.macs:,} ({info.macs / 1e6:,.1f} M)"),
        ("activation sites", str(info.activation_sites)),
        ("fixed sites", fixed if len(fixed) < 200 else f"{len(info.fixed_sites)} (sigmoid gates)"),
        ("supports fixup", "yes" if info.fixup else "no"),
        ("options", ", ".join(f"{k}={v!r}" for k, v in info.options.items()) or "none"),
        ("reference", info.reference or "-"),
    ):
        grid.add_row(key, value)
    console.print(f"[bold]{info.name}[/]")
    console.print(grid)


@models_app.command("list")
@handle_errors
def models_list(
    pattern: str = typer.Argument("*", help="Wildcard filter, e.g. 'resnet*'."),
    act: str = typer.Option("relu", "--act", help="Activation used for the counts."),
    classes: int = typer.Option(10, "--classes", help="Number of classes."),
    channels: int = typer.Option(3, "--channels", help="Input channels."),
    size: int = typer.Option(32, "--size", help="Input height = width in pixels."),
) -> None:
    """Every model with its parameters, MACs and activation sites at one input size."""
    from actlab.models import MODELS

    table = Table(title=f"models for {channels} x {size} x {size} inputs, {classes} classes")
    for column in ("name", "family", "parameters", "MACs (M)", "act sites", "fixup"):
        table.add_column(column, justify="left" if column in ("name", "family") else "right")
    for name in MODELS.list(pattern):
        info = _describe(name, act, classes, channels, size, {})
        table.add_row(name, info.family, f"{info.parameters:,}", f"{info.macs / 1e6:,.1f}",
                      str(info.activation_sites), "yes" if info.fixup else "")
    console.print(table)


data_app = typer.Typer(no_args_is_help=True, help="Inspect datasets.")
app.add_typer(data_app, name="data")

DatasetOptionsOption = typer.Option(
    [], "--option", "-o", help="Dataset option as key=value (repeatable), e.g. -o path=x.")


def _load_for_cli(name: str, data_dir: Path | None, option: list[str]) -> Any:
    from actlab.data import load_dataset
    from actlab.progress import set_progress_factory

    set_progress_factory(_rich_progress)
    try:
        return load_dataset(name, str(data_dir) if data_dir else None,
                            **_parse_model_options(option))
    finally:
        set_progress_factory(None)


def _rich_progress(description: str, total: int | None) -> Any:
    @contextlib.contextmanager
    def bar() -> Any:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=err_console, transient=True) as progress:
            task = progress.add_task(description, total=total)
            yield lambda amount=1: progress.advance(task, amount)

    return bar()


@data_app.command("info")
@handle_errors
def data_info(
    name: str = typer.Argument(..., help="A registered dataset, e.g. cifar10."),
    data_dir: Path | None = DataDirOption,
    option: list[str] = DatasetOptionsOption,
    checksums: bool = typer.Option(False, "--checksums",
                                   help="Compare the files with the official MD5s."),
) -> None:
    """Sizes, classes, location, statistics and cache state of a dataset."""
    from actlab.data.loader import channel_statistics

    dataset = _load_for_cli(name, data_dir, option)
    mean, std = channel_statistics(dataset.train_images)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    classes = ", ".join(dataset.classes[:20]) + (" ..." if dataset.num_classes > 20 else "")
    rows = [
        ("location", dataset.source),
        ("train", f"{len(dataset.train_labels):,} images"),
        ("test", f"{len(dataset.test_labels):,} images"),
        ("image", f"{dataset.channels} x {dataset.image_size} x {dataset.image_size} uint8"),
        ("classes", f"{dataset.num_classes}: {classes}"),
        ("train mean", ", ".join(f"{v:.4f}" for v in mean.tolist())),
        ("train std", ", ".join(f"{v:.4f}" for v in std.tolist())),
    ]
    if "cache" in dataset.details:
        state = "hit" if dataset.details["cache_hit"] else "written now"
        rows.append(("cache", f"{dataset.details['cache']} ({state})"))
    if checksums and "official_md5" in dataset.details:
        status = dataset.details["official_md5"]()
        matching = [f for f, ok in status.items() if ok]
        rows.append(("official MD5", f"{len(matching)}/{len(status)} files match"
                     + ("" if len(matching) == len(status) else
                        f" (differ or missing: {', '.join(f for f in status if not status[f])};"
                        " MD5s are of the official downloads' bytes, so a recompressed copy "
                        "such as Debian's differs even where its content is the same)")))
    for key, value in rows:
        grid.add_row(key, value)
    console.print(f"[bold]{dataset.name}[/]")
    console.print(grid)


@data_app.command("show")
@handle_errors
def data_show(
    name: str = typer.Argument(..., help="A registered dataset, e.g. cifar10."),
    data_dir: Path | None = DataDirOption,
    option: list[str] = DatasetOptionsOption,
    corruption: str | None = typer.Option(
        None, "--corruption", help="e.g. 'gaussian_noise(severity=3)' or "
                                   "'shot_noise_psi(psi=8)'; shown beside the clean images."),
    split: str = typer.Option("test", "--split", help="train or test."),
    per_class: int = typer.Option(8, "--per-class", help="Images per class (one row each)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the corruption and the sample."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="PNG file [default: DATASET[-CORRUPTION].png]."),
) -> None:
    """Write a grid of sample images (one row per class) as a PNG, to look at the data."""
    from actlab.components import parse_component_text
    from actlab.data.corrupt import corrupt
    from actlab.data.preview import sample_grid, sample_per_class

    if split not in ("train", "test"):
        err_console.print("[bold red]error:[/] --split must be train or test")
        raise typer.Exit(2)
    dataset = _load_for_cli(name, data_dir, option)
    images, labels = ((dataset.train_images, dataset.train_labels) if split == "train"
                      else (dataset.test_images, dataset.test_labels))
    chosen = sample_per_class(labels, min(per_class, 64), seed, max_classes=20)
    panels = [images[chosen]]
    stem = dataset.name
    if corruption:
        kind, options = parse_component_text(corruption)
        try:
            panels.append(corrupt(images[chosen], kind, seed=seed, **options))
        except (ValueError, TypeError) as exc:
            err_console.print(f"[bold red]error:[/] corruption '{corruption}': {exc}")
            raise typer.Exit(2) from None
        stem += "-" + corruption.replace("(", "-").replace(")", "").replace("=", "")
    path = sample_grid(panels, columns=min(per_class, 64), out=out or Path(f"{stem}.png"))
    console.print(f"wrote {path} ({len(chosen)} images per panel, rows = classes)")


def _registries() -> dict[str, Any]:
    from actlab.activations import ACTIVATIONS
    from actlab.data import DATASETS
    from actlab.inits import INITS
    from actlab.models import MODELS
    from actlab.train.schedules import SCHEDULES

    return {"activations": ACTIVATIONS, "inits": INITS, "models": MODELS, "datasets": DATASETS,
            "schedules": SCHEDULES}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
