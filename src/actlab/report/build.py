"""The study report: analysis of one or several stored studies, as a document written to
``index.html`` (offline, navigation by section), ``report.md``, ``tables/`` (Markdown,
LaTeX, CSV), ``figures/`` (PNG + SVG), ``runs.csv`` and ``epochs.csv``.

``Report`` is also the notebook API: ``Report(store, ['quickstart']).figure('heatmap')``
draws any figure on demand.

Terms. A *task* is a (model with its options, dataset, corruption) combination (with the
study, when several are compared); a *cell* is one combination of the other axes that
vary (activation, initializer, optimizer, learning rate, schedule, any other field) on a
task; its runs differ only by seed.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from actlab.analysis import cell_statistics, friedman
from actlab.analysis.summaries import cost
from actlab.report import (
    figures,
    seeding,  # noqa: F401  (registers the adaptive seeds' section)
    tuned,  # noqa: F401  (registers the tuned-comparison section)
)
from actlab.report.document import Section
from actlab.report.sections import TESTS, ReportWriter, ordered_sections
from actlab.report.tables import CellTable
from actlab.study import Store, StudyView
from actlab.study.stopping import higher_is_better, metric_scale

log = logging.getLogger(__name__)

TASK = ["study", "model", "dataset", "corruption"]
CELL_AXES = ["act", "init", "optimizer", "lr", "schedule", "setting"]


class ReportError(ValueError):
    """A report option that does not fit the studies (unknown metric, baseline)."""


class Report:
    """Everything the report shows, computed from the store on creation."""

    def __init__(self, store: Store, studies: list[str], metric: str = "test_acc",
                 baseline: dict[str, Any] | None = None, alpha: float = 0.05,
                 test: str = "wilcoxon", theory: bool = True, svg: bool = True,
                 rope: float | None = None, effect: float | None = None) -> None:
        if test not in TESTS:
            raise ReportError(f"unknown test {test!r}: use {' or '.join(TESTS)}")
        for name, value in (("--rope", rope), ("--effect", effect)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ReportError(f"{name} must be a positive number of metric points, got "
                                  f"{value}")
        self.store, self.studies, self.metric, self.alpha = store, studies, metric, alpha
        self.test, self.svg = test, svg
        self.left_out = set() if theory else {"theory"}  # sections not to write
        frames: dict[str, list[pd.DataFrame]] = {"runs": [], "epochs": [], "params": [],
                                                  "layers": []}
        self.views: dict[str, StudyView] = {name: store.study(name) for name in studies}
        self.specs: dict[str, dict] = {name: view.spec() for name, view in self.views.items()}
        for name, view in self.views.items():
            for kind in frames:
                frames[kind].append(getattr(view, kind)().assign(study=name))
        self.runs, self.epochs, self.params, self.layers = (
            pd.concat(frames[k], ignore_index=True) for k in ("runs", "epochs", "params",
                                                              "layers"))
        # A tuned study's trials (study/tuning.py), and its runs at the shared values
        # that are not also its selection, never enter the final statistics: the "Tuned
        # comparison" section shows them on their own.
        left_out = self._tuning_runs()
        self.trials = self.runs[self.runs["run_id"].isin(left_out["tune"])]
        self.shared = self.runs[self.runs["run_id"].isin(left_out["shared"])]
        dropped = left_out["tune"] | (left_out["shared"] - left_out["final"])
        self.runs, self.epochs, self.params, self.layers = (
            frame[~frame["run_id"].isin(dropped)] if "run_id" in frame else frame
            for frame in (self.runs, self.epochs, self.params, self.layers))
        if metric not in self.runs and not self.runs.empty and (
                self.runs["status"] == "completed").any():
            known = sorted(c for c in self.runs.columns if c.startswith(("test_", "best_")))
            raise ReportError(f"no metric {metric!r} in these runs; choose one of "
                             f"{', '.join(known)}")
        # One reading of a metric's direction and points for the report and the stopping
        # rules of adaptive seeds, which compare the same numbers.
        self.higher_is_better = higher_is_better(metric)
        self.scale = metric_scale(metric)
        set_by_tuning = self._tuned_columns()
        self.cell = [c for c in CELL_AXES if c in self.runs and self.runs[c].nunique() > 1
                     and c not in set_by_tuning] or ["act"]
        self.task = [c for c in TASK if c in self.runs and self.runs[c].nunique() > 1]
        self.adaptive = self._adaptive_studies()
        self.baseline = self._check_baseline(baseline or {})
        self.rope, self.rope_source = self._rope(rope)
        self.effect = effect if effect is not None else self.rope
        self.colours = figures.colour_map(list(dict.fromkeys(self.runs.get("act", []))))
        self.stats = (cell_statistics(self.runs, metric, self.task + self.cell,
                                      higher_is_better=self.higher_is_better)
                      if not self.runs.empty else pd.DataFrame())

    # -- structure -----------------------------------------------------------------------
    def _check_baseline(self, given: dict[str, Any]) -> dict[str, Any]:
        """The baseline cell: the given axis values, the plan's first value for the rest."""
        unknown = sorted(set(given) - set(self.cell))
        if unknown:
            raise ReportError(f"--baseline names {', '.join(unknown)}, which do not vary in "
                              f"these studies; the cell axes are {', '.join(self.cell)}")
        for axis, value in given.items():
            values = list(dict.fromkeys(self.runs[axis]))
            if value not in values:
                raise ReportError(f"no runs with {axis}={value}; the values are "
                                  f"{', '.join(map(str, values))}")
        return {**self._default_baseline(), **given}

    def _default_baseline(self) -> dict[str, Any]:
        """The baseline of the adaptive seeds' stopping rule where a study has one,
        else the first value of each cell axis in plan order (e.g. relu + he_normal)."""
        if self.runs.empty:
            return {}
        for states in self.adaptive.values():
            base = {spec.run_id for state in states if state.progress is None
                    for spec in state.planned}
            rows = self.runs[self.runs["run_id"].isin(base)]
            if not rows.empty:
                return {axis: rows[axis].iloc[0] for axis in self.cell}
        return {axis: self.runs[axis].iloc[0] for axis in self.cell}

    def _adaptive_studies(self) -> dict[str, list]:
        """The studies with adaptive seeds: each cell's seeds and where its stopping
        rule stands (study/stopping.py)."""
        from actlab.study.phases import seeding_state
        from actlab.study.plan import Study

        return {name: seeding_state(self.store, Study.model_validate(document))
                for name, document in self.specs.items()
                if isinstance(document.get("seeds"), dict)}

    def _rope(self, given: float | None) -> tuple[float, str]:
        """The ROPE in metric points and where it comes from: ``--rope``, a study's
        ``decided(rope)`` rule, or the default (0.5 points of a percentage, else 0.01)."""
        if given is not None:
            return given, "--rope"
        for name, document in self.specs.items():
            until = (document.get("seeds") or {}).get("until") if isinstance(
                document.get("seeds"), dict) else None
            if isinstance(until, dict) and until.get("kind") == "decided":
                return float(until["value"]), f"the stopping rule of {name}"
        return (0.5 if self.scale == 100 else 0.01), "the default"

    def tasks(self) -> list[tuple[dict[str, Any], pd.DataFrame]]:
        """(task, its runs) in plan order; a single task is ({}, all runs)."""
        if not self.task:
            return [({}, self.runs)]
        return [(dict(zip(self.task, key if isinstance(key, tuple) else (key,), strict=True)),
                 group) for key, group in self.runs.groupby(self.task, sort=False)]

    @property
    def has_results(self) -> bool:
        """Whether any run has completed (most sections need one)."""
        return not self.runs.empty and bool((self.runs["status"] == "completed").any())

    def task_stats(self, task: dict[str, Any]) -> pd.DataFrame:
        """The per-cell statistics of one task."""
        return self.task_frame(self.stats, task)

    @staticmethod
    def task_frame(frame: pd.DataFrame, task: dict[str, Any]) -> pd.DataFrame:
        """The rows of ``frame`` (runs, epochs, params, layers) that belong to ``task``."""
        for key, value in task.items():
            frame = frame[frame[key] == value]
        return frame

    @staticmethod
    def task_label(task: dict[str, Any]) -> str:
        return ", ".join(f"{v}" for v in task.values()) or "all runs"

    def cell_table(self, task: dict[str, Any]) -> CellTable:
        stats = self.task_stats(task).copy()
        rows, cols = ("act", "init") if "init" in self.cell and "act" in self.cell else (
            self.cell[0], None)
        if cols is None or len(self.cell) > 2:
            others = [c for c in self.cell if c != rows]
            stats["variant"] = stats[others].astype(str).agg(" / ".join, axis=1) \
                if others else "all"
            cols = "variant"
        return CellTable(stats, rows, cols, self.metric, scale=self.scale,
                         digits=2 if self.scale == 100 else 4,
                         higher_is_better=self.higher_is_better)

    # -- figures on demand (the notebook API) ---------------------------------------------
    def _tuning_runs(self) -> dict[str, set[str]]:
        """Run ids of the tuned studies' trials, of their finals at each group's
        selection, and of their runs at the shared values (``tune.shared``)."""
        from actlab.study.phases import current_plan, tuning_state
        from actlab.study.plan import Study

        ids: dict[str, set[str]] = {"tune": set(), "final": set(), "shared": set()}
        for document in self.specs.values():
            if not document.get("tune"):
                continue
            study = Study.model_validate(document)
            chosen = {state.group: state.selection.configuration
                      for state in tuning_state(self.store, study) if state.selection}
            shared = study.shared_configuration()
            for spec in current_plan(self.store, study):
                role, configuration = study.role_of(spec), study.configuration_of(spec)
                if role == "tune":
                    ids["tune"].add(spec.run_id)
                    continue
                if chosen.get(study.group_of(spec)) == configuration:
                    ids["final"].add(spec.run_id)
                if study.tune and study.tune.shared and configuration == shared:
                    ids["shared"].add(spec.run_id)
        return ids

    def _tuned_columns(self) -> set[str]:
        """The cell columns a tuned study's selection sets (its lr, its other tuned
        fields' ``setting``): the finals differ in them by group, not by design."""
        columns: set[str] = set()
        for spec in self.specs.values():
            space = (spec.get("tune") or {}).get("space", {})
            columns |= {"lr" if axis == "train.optimizer.lr" else "setting" for axis in space}
        return columns

    def figure(self, kind: str, task: dict[str, Any] | None = None, **options: Any) -> Any:
        """Draw one figure: 'curves' (metric=val_acc, x=epoch|time), 'bars', 'heatmap',
        'lr_sweep', 'cost', 'layers' (metric=grad_norm, ...), 'parameters' (act=...),
        'parameter_finals' (act=...), 'confusion', 'cd'."""
        task = task if task is not None else self.tasks()[0][0]
        epochs = self.task_frame(self.epochs, task)
        stats = self.task_stats(task)
        panel = "init" if "init" in self.cell else ("lr" if "lr" in self.cell else "model")
        if kind == "curves":
            series, colours, styles = self._series(epochs, exclude=panel)
            return figures.curves(series, options.get("metric", "val_acc"), "series", panel,
                                  colours, x=options.get("x", "epoch"), styles=styles,
                                  legend_title=" / ".join(c for c in self.cell if c != panel))
        if kind == "bars":
            table = self.cell_table(task)
            return figures.final_bars(table.stats, self.metric, table.rows, table.cols,
                                      self.colours, self.scale)
        if kind == "heatmap":
            table = self.cell_table(task)
            return figures.heatmap(table.stats, table.rows, table.cols, self.metric,
                                   self.scale, self.higher_is_better)
        if kind == "lr_sweep":
            by = [c for c in self.cell if c != "lr"]
            stats = cell_statistics(self.task_frame(self.runs, task), self.metric,
                                    ["lr", *by], higher_is_better=self.higher_is_better)
            return figures.lr_sweep(stats, self.metric, "act", self.colours, self.scale)
        if kind == "cost":
            spend = cost(self.task_frame(self.runs, task), epochs, self.cell)
            hue = "act" if "act" in spend else self.cell[0]  # act may not be an axis
            return figures.cost_bars(spend, options.get("value", "seconds_per_epoch"), hue,
                                     self.colours)
        if kind == "layers":  # one line per cell: colour = activation, style = the rest
            series, colours, styles = self._series(self.task_frame(self.layers, task),
                                                   exclude="act")
            return figures.layer_curves(series, options.get("metric", "grad_norm"), "series",
                                        colours, styles=styles,
                                        legend_title=" / ".join(self.cell))
        if kind == "parameters":
            return figures.parameter_trajectories(self.task_frame(self.params, task),
                                                  options["act"])
        if kind == "parameter_finals":
            return figures.parameter_finals(self.task_frame(self.params, task),
                                            options["act"])
        if kind == "confusion":
            run = self.best_run(task)
            matrix = self.views[run["study"]].confusion(run["run_id"])
            return figures.confusion_matrix(matrix or [[0]], title=self.describe_run(run))
        if kind == "cd":
            ranks = self.rank_table()
            result = friedman(ranks, self.alpha, self.higher_is_better)
            return figures.critical_difference(result.average_ranks,
                                               result.critical_difference)
        raise ValueError(f"unknown figure {kind!r}")

    def _series(self, frame: pd.DataFrame, exclude: str
                ) -> tuple[pd.DataFrame, figures.Colours, dict[str, str]]:
        """One line per combination of the cell axes other than ``exclude`` (the panel):
        the activation's colour, a line style per value of the remaining axes."""
        others = [c for c in self.cell if c not in ("act", exclude)]
        frame = frame.copy()
        suffix = (frame[others].astype(str).agg(" / ".join, axis=1) if others
                  else pd.Series("", index=frame.index))
        frame["series"] = frame["act"].astype(str) + [f" / {v}" if v else "" for v in suffix]
        dashes = ["-", "--", ":", "-."]
        style_of = {v: dashes[i % len(dashes)] for i, v in enumerate(dict.fromkeys(suffix))}
        labels = dict(zip(frame["series"], zip(frame["act"], suffix, strict=True), strict=True))
        colours = {label: self.colours.get(act) for label, (act, _) in labels.items()}
        styles = {label: style_of[rest] for label, (_, rest) in labels.items()}
        return frame, colours, styles

    def best_run(self, task: dict[str, Any]) -> pd.Series:
        done = self.task_frame(self.runs, task)
        done = done[done["status"] == "completed"].dropna(subset=[self.metric])
        pick = done[self.metric].idxmax() if self.higher_is_better else done[self.metric].idxmin()
        return done.loc[pick]

    def describe_run(self, run: pd.Series) -> str:
        parts = [str(run[c]) for c in ("model", *self.cell) if c in run]
        return " ".join(parts) + f" seed {run['seed']}"

    def method_label(self, frame: pd.DataFrame) -> pd.Series:
        return frame[self.cell].astype(str).agg(" / ".join, axis=1)

    def rank_table(self) -> pd.DataFrame:
        """Tasks x methods of the mean metric (methods complete on every task only)."""
        stats = self.stats.copy()
        stats["method"] = self.method_label(stats)
        if not self.task:  # one task
            return stats.set_index("method")[["mean"]].T.dropna(axis=1)
        table = stats.pivot_table(index=self.task, columns="method", values="mean",
                                  sort=False)
        return table.dropna(axis=1)

    # -- the document --------------------------------------------------------------------
    def sections(self, out: Path) -> list[Section]:
        """Every registered section that applies, in order, its figures and tables
        written under ``out`` (:mod:`actlab.report.sections`)."""
        writer = ReportWriter(self, out)
        sections: list[Section] = []
        for name, entry in ordered_sections():
            if (entry.needs_results and not self.has_results) or name in self.left_out:
                continue
            sections += entry.build(self, writer)
        return sections

    def write(self, out: str | Path, self_contained: bool = False) -> dict[str, Path]:
        """Write every file of the report into ``out``; returns their paths by kind."""
        from actlab.report.render import render_html, render_markdown

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.runs.to_csv(out / "runs.csv", index=False)
        self.epochs.to_csv(out / "epochs.csv", index=False)
        sections = self.sections(out)
        title = "Study report: " + " + ".join(self.studies)
        markdown = out / "report.md"
        markdown.write_text(render_markdown(title, sections))
        index = out / "index.html"
        index.write_text(render_html(title, sections, out, self_contained))
        log.info("wrote %s and %s", index, markdown)
        return {"html": index, "markdown": markdown}
