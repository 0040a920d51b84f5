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

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from actlab.analysis import (
    cell_statistics,
    compare_to_baseline,
    friedman,
    pairwise_wilcoxon_holm,
)
from actlab.analysis.summaries import convergence, cost, curve_peak, divergent_runs, last_vs_best
from actlab.report import figures
from actlab.report.document import ItemWriter, Section, TableItem, slug
from actlab.report.tables import CellTable
from actlab.study.store import Store
from actlab.train.engine import RESULT_ENVIRONMENT

log = logging.getLogger(__name__)

TASK = ["study", "model", "dataset", "corruption"]
CELL_AXES = ["act", "init", "optimizer", "lr", "schedule", "setting"]
LOWER_IS_BETTER = ("loss", "seconds", "epochs_to", "auc")
CI_TEXT = "95% percentile-bootstrap confidence interval of the mean over seeds"
TESTS = {"wilcoxon": "Wilcoxon signed-rank test over seed pairs",
         "welch": "Welch's t-test (unpaired, unequal variances)"}


class ReportError(ValueError):
    """A report option that does not fit the studies (unknown metric, baseline)."""


class Report:
    """Everything the report shows, computed from the store on creation."""

    def __init__(self, store: Store, studies: list[str], metric: str = "test_acc",
                 baseline: dict[str, Any] | None = None, alpha: float = 0.05,
                 test: str = "wilcoxon", theory: bool = True, svg: bool = True) -> None:
        if test not in TESTS:
            raise ReportError(f"unknown test {test!r}: use {' or '.join(TESTS)}")
        self.store, self.studies, self.metric, self.alpha = store, studies, metric, alpha
        self.test, self.theory, self.svg = test, theory, svg
        frames: dict[str, list[pd.DataFrame]] = {"runs": [], "epochs": [], "params": [],
                                                  "layers": []}
        self.specs: dict[str, dict] = {}
        for name in studies:
            view = store.study(name)
            self.specs[name] = store.study_spec(view.id)
            for kind in frames:
                frames[kind].append(getattr(view, kind)().assign(study=name))
        self.runs, self.epochs, self.params, self.layers = (
            pd.concat(frames[k], ignore_index=True) for k in ("runs", "epochs", "params",
                                                              "layers"))
        if metric not in self.runs and not self.runs.empty and (
                self.runs["status"] == "completed").any():
            known = sorted(c for c in self.runs.columns if c.startswith(("test_", "best_")))
            raise ReportError(f"no metric {metric!r} in these runs; choose one of "
                             f"{', '.join(known)}")
        self.higher_is_better = not any(word in metric for word in LOWER_IS_BETTER)
        self.scale = 100.0 if metric.endswith(("acc", "top3", "f1", "precision", "recall")) \
            else 1.0
        self.cell = [c for c in CELL_AXES if c in self.runs and self.runs[c].nunique() > 1] \
            or ["act"]
        self.task = [c for c in TASK if c in self.runs and self.runs[c].nunique() > 1]
        self.baseline = self._check_baseline(baseline or {})
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
        """The first value of each cell axis in plan order (e.g. relu + he_normal)."""
        if self.runs.empty:
            return {}
        return {axis: self.runs[axis].iloc[0] for axis in self.cell}

    def tasks(self) -> list[tuple[dict[str, Any], pd.DataFrame]]:
        """(task, its runs) in plan order; a single task is ({}, all runs)."""
        if not self.task:
            return [({}, self.runs)]
        return [(dict(zip(self.task, key if isinstance(key, tuple) else (key,), strict=True)),
                 group) for key, group in self.runs.groupby(self.task, sort=False)]

    def _task_stats(self, task: dict[str, Any]) -> pd.DataFrame:
        return self._task_frame(self.stats, task)

    def _task_frame(self, frame: pd.DataFrame, task: dict[str, Any]) -> pd.DataFrame:
        for key, value in task.items():
            frame = frame[frame[key] == value]
        return frame

    @staticmethod
    def task_label(task: dict[str, Any]) -> str:
        return ", ".join(f"{v}" for v in task.values()) or "all runs"

    def cell_table(self, task: dict[str, Any]) -> CellTable:
        stats = self._task_stats(task).copy()
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
    def figure(self, kind: str, task: dict[str, Any] | None = None, **options: Any) -> Any:
        """Draw one figure: 'curves' (metric=val_acc, x=epoch|time), 'bars', 'heatmap',
        'lr_sweep', 'cost', 'layers' (metric=grad_norm, ...), 'parameters' (act=...),
        'parameter_finals' (act=...), 'confusion', 'cd'."""
        task = task if task is not None else self.tasks()[0][0]
        epochs = self._task_frame(self.epochs, task)
        stats = self._task_stats(task)
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
            stats = cell_statistics(self._task_frame(self.runs, task), self.metric,
                                    ["lr", *by], higher_is_better=self.higher_is_better)
            return figures.lr_sweep(stats, self.metric, "act", self.colours, self.scale)
        if kind == "cost":
            spend = cost(self._task_frame(self.runs, task), epochs, self.cell)
            hue = "act" if "act" in spend else self.cell[0]  # act may not be an axis
            return figures.cost_bars(spend, options.get("value", "seconds_per_epoch"), hue,
                                     self.colours)
        if kind == "layers":  # one line per cell: colour = activation, style = the rest
            series, colours, styles = self._series(self._task_frame(self.layers, task),
                                                   exclude="act")
            return figures.layer_curves(series, options.get("metric", "grad_norm"), "series",
                                        colours, styles=styles,
                                        legend_title=" / ".join(self.cell))
        if kind == "parameters":
            return figures.parameter_trajectories(self._task_frame(self.params, task),
                                                  options["act"])
        if kind == "parameter_finals":
            return figures.parameter_finals(self._task_frame(self.params, task),
                                            options["act"])
        if kind == "confusion":
            run = self.best_run(task)
            matrix = self.store.confusion(self.store.study_id(run["study"]), run["run_id"])
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
        done = self._task_frame(self.runs, task)
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
        writer = _Writer(self, out)
        return writer.build()

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


class _Writer(ItemWriter):
    """Builds the sections, writing figures and tables as it goes."""

    def __init__(self, report: Report, out: Path) -> None:
        super().__init__(out, svg=report.svg)
        self.r = report

    def n_text(self, task: dict[str, Any]) -> str:
        """'n = 2-3 completed runs per cell' for the captions."""
        n = self.r._task_stats(task)["n"]
        span = f"{int(n.min())}" + (f"-{int(n.max())}" if n.max() != n.min() else "")
        return f"n = {span} completed runs per cell"

    def prefix(self, task: dict[str, Any]) -> str:
        """File-name prefix of a task's figures and tables (none for a single task)."""
        return slug("-".join(map(str, task.values()))) + "-" if task else ""

    def table(self, name: str, title: str, caption: str, frame: pd.DataFrame | None = None,
              cells: CellTable | None = None) -> TableItem:
        if cells is not None:
            return super().table(name, title, caption, cells.stats, texts=(
                cells.to_markdown(), cells.to_html(), cells.to_latex(), cells.to_csv()))
        return super().table(name, title, caption, frame)

    def build(self) -> list[Section]:
        r = self.r
        sections = [self.overview()]
        if r.runs.empty or not (r.runs["status"] == "completed").any():
            sections[0].paragraphs.append("No completed runs yet: run the study with "
                                          "`actlab run`.")
            return [*sections, *self.theory(), self.divergent(), self.environment()]
        for task, runs in r.tasks():
            sections.append(self.results(task, runs))
        sections.append(self.comparisons())
        sections.append(self.curves())
        if "lr" in r.cell:
            sections.append(self.lr_sweep())
        sections.append(self.convergence_and_cost())
        if not r.params.empty:
            sections.append(self.learnable())
        if not r.layers.empty:
            sections.append(self.layer_section())
        sections.append(self.confusion())
        sections += [*self.theory(), self.divergent(), self.environment()]
        return sections

    def theory(self) -> list[Section]:
        """The theory of the study's activations and initializers (if asked)."""
        if not self.r.theory or self.r.runs.empty:
            return []
        from actlab.theory.report import study_theory_section  # torch-heavy; only if asked

        return [study_theory_section(self.r, self, self.prefix)]

    def overview(self) -> Section:
        r = self.r
        section = Section("Overview")
        counts = r.runs["status"].value_counts()
        section.paragraphs.append(
            f"**Runs:** {counts.get('completed', 0)} completed, {counts.get('diverged', 0)} "
            f"diverged, {counts.get('failed', 0)} failed, "
            f"{counts.get('pending', 0) + counts.get('running', 0)} not yet run "
            f"(of {len(r.runs)}).")
        for name, spec in r.specs.items():
            if spec.get("description"):
                section.paragraphs.append(f"**{name}:** {spec['description'].strip()}")
        runs = r.runs
        for column, title in (("model", "models"), ("dataset", "datasets"),
                              ("act", "activations"), ("init", "initializers")):
            if column in runs:
                values = ", ".join(map(str, dict.fromkeys(runs[column])))
                section.paragraphs.append(f"{title}: {values}")
        if "lr" in r.cell:
            section.paragraphs.append(
                f"learning rates: {', '.join(f'{v:g}' for v in sorted(set(runs['lr'])))}")
        seeds = runs.groupby(r.task + r.cell, sort=False)["seed"].nunique()
        section.paragraphs.append(
            f"seeds per cell: {seeds.min()}" + (f"-{seeds.max()}" if seeds.max() != seeds.min()
                                                 else "")
            + f"; metric: **{r.metric}** ({'higher' if r.higher_is_better else 'lower'} is "
              f"better); baseline for comparisons: "
              f"{' / '.join(str(v) for v in r.baseline.values())}")
        return section

    def results(self, task: dict[str, Any], runs: pd.DataFrame) -> Section:
        r = self.r
        label = r.task_label(task)
        section = Section(f"Results: {label}" if r.task else "Results")
        cells = r.cell_table(task)
        best = cells.stats.dropna(subset=["mean"])
        if not best.empty:
            top = best.loc[best["mean"].idxmax() if r.higher_is_better else best["mean"].idxmin()]
            section.paragraphs.append(
                f"Best cell: **{' / '.join(str(top[c]) for c in r.cell)}** with "
                f"{cells.text(top[cells.rows], top[cells.cols])} {r.metric}.")
        cells.caption = (f"{r.metric} at the last epoch, mean ± std over seeds (n = completed "
                         "runs); per row the best in bold, per column in italics.")
        section.add(self.table(f"{self.prefix(task)}{r.metric}", f"{r.metric} ({label})",
                               cells.caption, cells=cells))
        n_text = f"n = {int(cells.stats['n'].min())}-{int(cells.stats['n'].max())} seeds per cell"
        section.add(self.fig(r.figure("bars", task), f"{self.prefix(task)}bars",
                             f"Final {r.metric} with confidence intervals",
                             f"Mean {r.metric} per cell; whiskers: {CI_TEXT} ({n_text})."))
        if "init" in r.cell or len(r.cell) > 1:
            section.add(self.fig(r.figure("heatmap", task), f"{self.prefix(task)}heatmap",
                                 f"{r.metric}: {cells.rows} x {cells.cols}",
                                 f"Mean {r.metric} per cell ({n_text}); grey: no completed "
                                 "run."))
        selection = last_vs_best(runs, r.cell)
        peak = curve_peak(r._task_frame(r.epochs, task), r.cell)
        if not selection.empty:
            section.add(self.table(f"{self.prefix(task)}selection", "Last epoch vs best validation "
                                   "epoch", "Test metric of the last epoch's weights and of the "
                                   "best-validation epoch's weights (model selection on "
                                   "validation), mean over completed runs.", frame=selection))
        if not peak.empty:
            section.add(self.table(f"{self.prefix(task)}peak",
                                   "Best validation accuracy and its epoch",
                                   "Per run the maximum of the validation-accuracy curve, "
                                   "the epoch it was reached, and the last epoch's value; "
                                   "mean over completed runs.", frame=peak))
        stats = cells.stats[[*r.cell, "n", "mean", "std", "median", "iqm", "ci_low",
                             "ci_high", "worst", "diverged"]]
        section.add(self.table(f"{self.prefix(task)}statistics", "Statistics per cell",
                               f"Mean, std, median, interquartile mean, {CI_TEXT}, worst "
                               "seed and diverged runs per cell.", frame=stats))
        return section

    def comparisons(self) -> Section:
        r = self.r
        section = Section("Comparisons")
        table = compare_to_baseline(r.runs, r.metric, r.cell, r.baseline, r.task or None,
                                    test=r.test, alpha=r.alpha,
                                    higher_is_better=r.higher_is_better)
        base = " / ".join(str(v) for v in r.baseline.values())
        if table.empty:
            section.paragraphs.append(f"No completed baseline runs ({base}) to compare with.")
        else:
            significant = table[table["significant"]]
            section.paragraphs.append(
                f"Each cell against the baseline **{base}** of its task: "
                f"{TESTS[r.test]}, Holm-corrected within each task, at "
                f"α = {r.alpha}. {len(significant)} of {len(table)} differences are "
                "significant" + (": " + "; ".join(
                    f"{' / '.join(str(row[c]) for c in r.cell)} "
                    f"({'better' if (row['difference'] > 0) == r.higher_is_better else 'worse'}"
                    f", {row['difference'] * r.scale:+.2f}, p_holm {row['p_holm']:.3g})"
                    for _, row in significant.iterrows()) if len(significant) else "")
                + ".")
            if r.test == "wilcoxon" and table["n_pairs"].max() < 6:
                section.paragraphs.append(
                    f"With {int(table['n_pairs'].max())} seeds per cell the smallest possible "
                    "two-sided Wilcoxon p-value is "
                    f"{2 / 2 ** int(table['n_pairs'].max()):.3g}: run more seeds to resolve "
                    "differences.")
            section.add(self.table("baseline", f"Against the baseline ({base})",
                                   f"difference = cell - baseline mean; p: {TESTS[r.test]}; "
                                   "p_holm: Holm-adjusted; "
                                   "p_improvement: probability that a run of the cell beats "
                                   "a run of the baseline.", frame=table))
        ranks = r.rank_table()
        if ranks.shape[0] >= 2 and ranks.shape[1] >= 3:
            result = friedman(ranks, r.alpha, r.higher_is_better)
            verdict = ("the methods differ" if result.iman_davenport_pvalue < r.alpha
                       else "no difference between the methods can be claimed")
            section.paragraphs.append(
                f"Across {ranks.shape[0]} tasks: Friedman χ² = {result.statistic:.2f} "
                f"(p = {result.pvalue:.3g}), Iman-Davenport F = {result.iman_davenport:.2f} "
                f"(p = {result.iman_davenport_pvalue:.3g}): {verdict} at α = {r.alpha}. "
                f"Nemenyi critical difference: {result.critical_difference:.2f} ranks.")
            ranked = result.average_ranks.sort_values().reset_index()
            ranked.columns = ["method", "average rank"]
            section.add(self.table("ranks", "Average ranks across tasks",
                                   "1 = best on a task; ties share the mean rank.",
                                   frame=ranked))
            section.add(self.fig(r.figure("cd"), "critical-difference",
                                 "Critical-difference diagram",
                                 f"Average ranks over {ranks.shape[0]} tasks; methods joined "
                                 "by a bar are not significantly different (Nemenyi, "
                                 f"α = {r.alpha}, Demšar 2006)."))
            section.add(self.table("pairwise", "Pairwise Wilcoxon-Holm across tasks",
                                   "Every pair of methods over tasks, Holm-adjusted.",
                                   frame=pairwise_wilcoxon_holm(ranks, r.alpha)))
        else:
            section.paragraphs.append(
                "Rank statistics across tasks (Friedman, critical differences) need at least "
                "2 tasks (model x dataset) and 3 methods with results on all of them; "
                f"this report has {ranks.shape[0]} task(s) and {ranks.shape[1]} method(s).")
        return section

    def curves(self) -> Section:
        r = self.r
        section = Section("Curves")
        section.paragraphs.append("Mean over seeds; bands are ±1 standard deviation across "
                                  "seeds; completed runs only.")
        panels = [("val_acc", "epoch", "Validation accuracy per epoch"),
                  ("train_loss", "epoch", "Training loss per epoch"),
                  ("val_loss", "epoch", "Validation loss per epoch"),
                  ("val_acc", "time", "Validation accuracy vs time"),
                  ("train_loss", "time", "Training loss vs time")]
        if "test_acc" in r.epochs and r.epochs["test_acc"].notna().any():
            # recorded with train.test_each_epoch (he-init-depth's accuracy per epoch)
            panels.insert(1, ("test_acc", "epoch", "Test accuracy per epoch"))
        for task, _ in r.tasks():
            label = r.task_label(task)
            for metric, x, title in panels:
                figure = r.figure("curves", task, metric=metric, x=x)
                name = f"{self.prefix(task)}{metric}" + ("" if x == "epoch" else f"-{x}")
                section.add(self.fig(figure, name, f"{title} ({label})",
                                     f"{title}: mean over seeds with ±1 std band, "
                                     f"{self.n_text(task)}; colour = activation."))
        return section

    def lr_sweep(self) -> Section:
        r = self.r
        section = Section("Learning-rate sweep")
        for task, _ in r.tasks():
            section.add(self.fig(r.figure("lr_sweep", task), f"{self.prefix(task)}lr-sweep",
                                 f"{r.metric} vs learning rate ({r.task_label(task)})",
                                 f"Mean final {r.metric} per learning rate "
                                 f"({self.n_text(task)}); band: {CI_TEXT}."))
        return section

    def convergence_and_cost(self) -> Section:
        r = self.r
        section = Section("Convergence and cost")
        for task, runs in r.tasks():
            label = r.task_label(task)
            speed = convergence(runs, r.cell)
            if not speed.empty:
                section.add(self.table(f"{self.prefix(task)}convergence", f"Convergence ({label})",
                                       "Epochs and seconds until validation accuracy first "
                                       "reaches 90% / 95% of its final value; area under "
                                       "the training-loss curve.", frame=speed))
            spend = cost(runs, r._task_frame(r.epochs, task), r.cell)
            section.add(self.table(f"{self.prefix(task)}cost", f"Cost ({label})",
                                   "Seconds per epoch, training images per second, peak "
                                   "memory (MB), parameters.", frame=spend))
            section.add(self.fig(r.figure("cost", task), f"{self.prefix(task)}epoch-time",
                                 f"Seconds per epoch per activation ({label})",
                                 "Mean wall time of a training epoch (with evaluation)."))
        return section

    def learnable(self) -> Section:
        r = self.r
        section = Section("Learnable activations")
        section.paragraphs.append("Values of each learnable activation parameter per site "
                                  "(epoch 0 = at initialization), mean over seeds.")
        for task, _ in r.tasks():
            params = r._task_frame(r.params, task)
            for act in dict.fromkeys(params["act"]):
                section.add(self.fig(r.figure("parameters", task, act=act),
                                     f"{self.prefix(task)}params-{slug(act)}",
                                     f"{act}: parameters per epoch ({r.task_label(task)})",
                                     "One line per site, in network order."))
                section.add(self.fig(r.figure("parameter_finals", task, act=act),
                                     f"{self.prefix(task)}params-final-{slug(act)}",
                                     f"{act}: final values per site",
                                     "Mean over seeds; whiskers: min-max over seeds."))
                data = params[params["act"] == act]
                last = data[data["epoch"] == data.groupby("run_id")["epoch"].transform("max")]
                finals = (last.groupby(["site", "name"], sort=False)["value"]
                          .agg(["mean", "std", "min", "max"]).reset_index())
                section.add(self.table(f"{self.prefix(task)}params-{slug(act)}",
                                       f"{act}: final parameter values",
                                       "Per site and parameter over seeds.", frame=finals))
        return section

    def layer_section(self) -> Section:
        r = self.r
        section = Section("Layers")
        section.paragraphs.append("Per-layer measurements over epochs (mean over seeds): "
                                  "average weight and its spread, gradient norm (mean over "
                                  "the epoch's steps), fraction of dead units.")
        for task, _ in r.tasks():
            layers = r._task_frame(r.layers, task)
            for metric in dict.fromkeys(layers["metric"]):
                section.add(self.fig(r.figure("layers", task, metric=metric),
                                     f"{self.prefix(task)}layers-{metric}",
                                     f"{figures.label(metric)} per layer ({r.task_label(task)})",
                                     "First layers in network order; one colour per "
                                     "activation."))
        return section

    def confusion(self) -> Section:
        r = self.r
        section = Section("Best run")
        for task, _ in r.tasks():
            run = r.best_run(task)
            section.add(self.fig(r.figure("confusion", task), f"{self.prefix(task)}confusion",
                                 f"Confusion matrix of the best run ({r.task_label(task)})",
                                 f"{r.describe_run(run)}: {r.metric} "
                                 f"{run[r.metric] * r.scale:.2f}; rows: true class."))
        return section

    def divergent(self) -> Section:
        r = self.r
        section = Section("Divergent and failed runs")
        bad = r.runs[r.runs["status"].isin(["diverged", "failed"])] if not r.runs.empty \
            else r.runs
        if bad.empty:
            section.paragraphs.append("None: every finished run trained to the end with a "
                                      "finite loss.")
            return section
        for row in bad.itertuples():
            why = (f"diverged in epoch {int(row.diverged_epoch)}: {row.reason}"
                   if row.status == "diverged"
                   else f"failed: {str(row.error).strip().splitlines()[-1]}")
            cell = " / ".join(str(getattr(row, c)) for c in r.cell)
            section.add(f"{row.model} {cell} seed {row.seed} ({row.run_id}): {why}")
        rates = r.stats[[*r.task, *r.cell, "diverged", "failed", "divergence_rate"]]
        rates = rates[(rates["diverged"] > 0) | (rates["failed"] > 0)]
        if not rates.empty:
            section.add(self.table("divergence", "Divergence per cell",
                                   "Diverged and failed runs per cell and the divergence "
                                   "rate over the cell's runs.", frame=rates))
        listed = divergent_runs(r.runs, [*r.task, *r.cell])
        if not listed.empty:
            (self.out / "tables").mkdir(parents=True, exist_ok=True)
            listed.to_csv(self.out / "tables" / "divergent-runs.csv", index=False)
        return section

    def environment(self) -> Section:
        r = self.r
        section = Section("Environment and files")
        environments, resumed_elsewhere, eager = _environments(r)
        if len(environments) == 1:
            section.paragraphs.append(_describe_env(next(iter(environments)))
                                      + ". Every run's full spec and environment are in "
                                        "the store.")
        elif environments:
            section.paragraphs.append(
                f"The runs were trained in {len(environments)} environments (numbers from "
                "different devices, thread counts or versions agree only up to float "
                "rounding): " + "; ".join(
                    f"{_describe_env(env)}: {count} run{'s' if count != 1 else ''}"
                    for env, count in sorted(environments.items(),
                                             key=lambda item: -item[1])) + ".")
        if resumed_elsewhere:
            section.paragraphs.append(
                f"{resumed_elsewhere} run{'s were' if resumed_elsewhere != 1 else ' was'} "
                "resumed from a checkpoint in another environment (its `info` in the store "
                "lists `resumed_env_changes`): not bit-identical to an uninterrupted run.")
        if eager:
            section.paragraphs.append(
                f"{eager} run{'s' if eager != 1 else ''} asked for torch.compile but trained "
                "eagerly (torch compiled no graph; `compile_fell_back` in the store): "
                "their epoch times are not compiled times.")
        section.paragraphs.append(
            "Files: `runs.csv` (one row per run: spec fields, status, final metrics), "
            "`epochs.csv` (one row per run and epoch), `tables/` (every table as Markdown, "
            "LaTeX and CSV), `figures/` (every figure as PNG and SVG), `report.md`.")
        return section


# What decides a run's numbers (engine.RESULT_ENVIRONMENT), and the Python version.
ENV_SHOWN = (*RESULT_ENVIRONMENT, "python")


def _environments(report: Report) -> tuple[dict[tuple, int], int, int]:
    """Runs per distinct environment (the fields :func:`_describe_env` shows), how many
    runs were resumed in another environment than the one that started them, and how
    many asked for torch.compile and trained eagerly."""
    counts: dict[tuple, int] = {}
    resumed_elsewhere = eager = 0
    for name in report.studies:
        rows = report.store.conn.execute(
            "SELECT info FROM runs WHERE study_id=? AND info IS NOT NULL",
            (report.store.study_id(name),))
        for row in rows:
            info = json.loads(row["info"])
            resumed_elsewhere += bool(info.get("resumed_env_changes"))
            eager += bool(info.get("compile_fell_back"))
            env = info.get("env")
            if not env:  # a store written before runs recorded their environment
                continue
            key = tuple((field, env.get(field)) for field in ENV_SHOWN)
            counts[key] = counts.get(key, 0) + 1
    return counts, resumed_elsewhere, eager


def _describe_env(env: tuple) -> str:
    e = dict(env)
    return (f"actlab {e['actlab']} (commit {e['git_commit'] or 'unknown'}), torch {e['torch']}, "
            f"Python {e['python']}, device {e['device']} ({e['device_name']}), "
            f"{e['threads']} thread{'' if e['threads'] == 1 else 's'}")

