"""``actlab report``, ``status``, ``runs``, ``export`` and ``delete``: what is in a run
store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from actlab.cli.common import (
    LimitOption,
    PluginOption,
    StoreOption,
    app,
    console,
    err_console,
    handle_errors,
    load_plugins,
    store_path,
)
from actlab.cli.execute import write_report


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
    rope: float | None = typer.Option(
        None, "--rope", min=0.0, help="Region of practical equivalence of the Bayesian "
        "verdicts, ± this many metric points (percentage points for accuracies) [default: a "
        "study's decided(rope) rule, else 0.5 points]."),
    effect: float | None = typer.Option(
        None, "--effect", min=0.0, help="The difference, in metric points, the power table "
        "says how many seeds per cell it takes to detect [default: the ROPE]."),
    plugin: list[str] = PluginOption,
) -> None:
    """Write a report: index.html, report.md, tables/ (Markdown, LaTeX, CSV), figures/
    (PNG, and SVG unless --no-svg), runs.csv and epochs.csv."""
    from actlab.report.build import ReportError
    from actlab.study import Store

    path = store_path(store)
    if not path.exists():
        err_console.print(f"[bold red]error:[/] no run store at {path}; run a study first "
                          "(`actlab run STUDY.yaml`) or pass --store.")
        raise typer.Exit(2)
    from actlab import plugins

    load_plugins(plugin)
    with Store(path, read_only=True) as db:
        for name in studies:
            db.study_id(name)  # an unknown name is a clear error before any work
            plugins.load(db.study_plugins(name))  # the code its runs were planned with
        try:
            write_report(db, studies, out, metric=metric, test=test,
                         baseline=_parse_baseline(baseline), self_contained=self_contained,
                         theory=theory, svg=svg, rope=rope, effect=effect)
        except ReportError as exc:
            raise typer.BadParameter(str(exc)) from None


def _print_open_cells(path: Path, names: list[str]) -> None:
    """One line per study with adaptive seeds: how many cells are still open."""
    from actlab.cli.tables import seeding_summary
    from actlab.study import Store
    from actlab.study.phases import seeding_state
    from actlab.study.plan import Study

    with Store(path, read_only=True) as db:
        for name in names:
            document = db.study(name).spec()
            if isinstance(document.get("seeds"), dict):
                states = seeding_state(db, Study.model_validate(document))
                console.print(f"{name}: adaptive seeds, {seeding_summary(states)} "
                              f"(`actlab status {name}` says why)")


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
def status(study: str | None = typer.Argument(None, help="Study name [default: all]."),
           store: Path | None = StoreOption) -> None:
    """Progress of the stored studies: runs by state, the runs in flight, time left."""
    from actlab.study import Store
    from actlab.study.progress import format_duration, study_progress

    path = store_path(store)
    if not path.exists():
        console.print(f"no run store at {path} yet")
        return
    with Store(path, read_only=True) as db:
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
        _print_open_cells(path, [progress.name for progress in studies])
        return
    (progress,) = studies
    with Store(path, read_only=True) as db:
        document = db.study(study).spec()
        if document.get("tune"):
            from actlab.cli.tables import print_tuning
            from actlab.study.plan import Study

            print_tuning(console, db, Study.model_validate(document))
        if isinstance(document.get("seeds"), dict):
            from actlab.cli.tables import print_seeding
            from actlab.study.plan import Study

            print_seeding(console, db, Study.model_validate(document))
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


def _open_existing(store: Path | None, read_only: bool = True) -> Any:
    from actlab.study import Store

    path = store_path(store)
    if not path.exists():
        err_console.print(f"[bold red]error:[/] no run store at {path}; run a study first "
                          "(`actlab run STUDY.yaml`) or pass --store.")
        raise typer.Exit(2)
    return Store(path, read_only=read_only)


#: The columns `actlab runs` chooses from: the cell, then the outcome. Those the same in
#: every run are named under the table instead (but status, test_acc and run_id stay).
RUN_COLUMNS = ("model", "dataset", "corruption", "act", "init", "optimizer", "lr",
               "schedule", "setting", "seed", "status", "test_acc", "test_loss",
               "best_val_epoch", "diverged_epoch", "wall_time", "run_id")
#: Highest first: what a narrow terminal keeps.
RUN_PRIORITY = ("status", "test_acc", "act", "model", "init", "lr", "schedule", "seed",
                "run_id", "corruption", "dataset", "optimizer", "setting", "test_loss",
                "diverged_epoch", "best_val_epoch", "wall_time")


@app.command()
@handle_errors
def runs(
    study: str = typer.Argument(..., help="Study name."),
    store: Path | None = StoreOption,
    where: list[str] = typer.Option(
        [], "--where", "-w", help="Filter as column=value (repeatable), e.g. -w act=mish "
                                  "-w status=diverged."),
    columns: str | None = typer.Option(
        None, "--columns", help="Comma-separated columns to show [default: those that "
                                "vary, as many as fit the terminal]."),
    limit: int = LimitOption,
) -> None:
    """The runs of a study as a table (filterable)."""
    from actlab.cli.tables import print_runs

    with _open_existing(store) as db:
        records = db.study(study).records()
    known = list(dict.fromkeys([*RUN_COLUMNS, *(key for record in records for key in record)]))
    for condition in where:
        key, sep, value = condition.partition("=")
        if not sep or key not in known:
            err_console.print(f"[bold red]error:[/] cannot filter on '{condition}': use "
                              f"column=value with a column of {', '.join(known)}")
            raise typer.Exit(2)
        records = [r for r in records if _cell(r.get(key), digits=None) == value]
    chosen = [c.strip() for c in (columns or ",".join(RUN_COLUMNS)).split(",") if c.strip()]
    unknown = [c for c in chosen if c not in known]
    if unknown:
        err_console.print(f"[bold red]error:[/] no column {', '.join(unknown)}; columns: "
                          f"{', '.join(known)}")
        raise typer.Exit(2)
    rows = [{c: _cell(record.get(c)) for c in chosen} for record in records]
    print_runs(console, f"{study}: {len(records)} run(s)", rows, chosen, RUN_PRIORITY,
               keep=("status", "test_acc", "run_id"), fixed=columns is not None, limit=limit,
               choose_hint=" (--columns to choose)")


def _cell(value: Any, digits: int | None = 4) -> str:
    """A value as the table shows it (``digits`` significant digits; None: in full)."""
    if isinstance(value, float):
        return "" if value != value else f"{value:.{digits}g}" if digits else str(value)
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
    with _open_existing(store, read_only=False) as db:
        counts = db.study(study).counts()
        total = sum(counts.values())
        if not yes and not typer.confirm(f"delete study '{study}' and its {total} run(s) "
                                         f"from {db.path}?"):
            err_console.print("nothing deleted")
            raise typer.Exit(1)
        deleted = db.delete_study(study)
    console.print(f"deleted study '{study}' ({deleted} runs)")

