"""The report's sections: a registry of section builders, called in their order.

A section builder takes the :class:`~actlab.report.build.Report` (the analysed runs) and
a :class:`ReportWriter` (which writes figures and tables into the report's folder) and
returns the sections it adds, none where it does not apply. Builders marked
``needs_results`` run only once some run has completed. Other packages add sections by
registering a builder with :func:`register_section` in a module named in the
entry-point group ``actlab.report_sections``: actlab's own theory section
(:mod:`actlab.theory.section`) is added that way, so the report never imports the
theory (docs/design.md, "Adding a report section").
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from actlab.analysis import compare_to_baseline, friedman, pairwise_wilcoxon_holm
from actlab.analysis.summaries import convergence, cost, curve_peak, divergent_runs, last_vs_best
from actlab.plugins import PluginSource
from actlab.registry import Registry
from actlab.report import figures
from actlab.report.document import CodeItem, ItemWriter, Section, TableItem, slug
from actlab.report.tables import CellTable
from actlab.spec import RESULT_ENVIRONMENT

if TYPE_CHECKING:
    from actlab.report.build import Report

log = logging.getLogger(__name__)

CI_TEXT = "95% percentile-bootstrap confidence interval of the mean over seeds"
TESTS = {"wilcoxon": "Wilcoxon signed-rank test over seed pairs",
         "welch": "Welch's t-test (unpaired, unequal variances)"}
#: The entry-point group of modules that register report sections.
SECTION_PLUGINS = "actlab.report_sections"

SectionBuilder = Callable[["Report", "ReportWriter"], list[Section]]


@dataclass(frozen=True)
class SectionEntry:
    build: SectionBuilder
    order: int  # sections appear in increasing order
    needs_results: bool  # only once some run has completed


SECTIONS: Registry[SectionEntry] = Registry("report section")


def register_section(name: str, *, order: int, needs_results: bool = False
                     ) -> Callable[[SectionBuilder], SectionBuilder]:
    """Decorator: add a section builder to every report, at ``order`` (the built-in
    sections use 10, 20, ... 120; the theory section 100)."""

    def decorator(build: SectionBuilder) -> SectionBuilder:
        SECTIONS.add(name, SectionEntry(build, order, needs_results))
        return build

    return decorator


def load_section_plugins() -> None:
    """Import the modules of the ``actlab.report_sections`` entry points (once each)."""
    for entry_point in importlib.metadata.entry_points(group=SECTION_PLUGINS):
        if entry_point.name not in SECTIONS:
            entry_point.load()


def ordered_sections() -> list[tuple[str, SectionEntry]]:
    """Every registered section, plug-ins included, in report order."""
    load_section_plugins()
    return sorted(((name, SECTIONS.get(name)) for name in SECTIONS),
                  key=lambda item: item[1].order)


class ReportWriter(ItemWriter):
    """Writes a report's figures and tables as its sections are built."""

    def __init__(self, report: Report, out: Path) -> None:
        super().__init__(out, svg=report.svg)
        self.report = report

    def n_text(self, task: dict[str, Any]) -> str:
        """'n = 2-3 completed runs per cell' for the captions."""
        n = self.report.task_stats(task)["n"]
        span = f"{int(n.min())}" + (f"-{int(n.max())}" if n.max() != n.min() else "")
        return f"n = {span} completed runs per cell"

    @staticmethod
    def prefix(task: dict[str, Any]) -> str:
        """File-name prefix of a task's figures and tables (none for a single task)."""
        return slug("-".join(map(str, task.values()))) + "-" if task else ""

    def table(self, name: str, title: str, caption: str, frame: pd.DataFrame | None = None,
              cells: CellTable | None = None) -> TableItem:
        if cells is not None:
            return super().table(name, title, caption, cells.stats, texts=(
                cells.to_markdown(), cells.to_html(), cells.to_latex(), cells.to_csv()))
        return super().table(name, title, caption, frame)


@register_section("overview", order=10)
def overview(r: Report, w: ReportWriter) -> list[Section]:
    """How many runs in which state, the studies' descriptions, what varies, the seeds,
    the metric and the baseline."""
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
    if not r.has_results:
        section.paragraphs.append("No completed runs yet: run the study with `actlab run`.")
    return [section]


@register_section("results", order=20, needs_results=True)
def results(r: Report, w: ReportWriter) -> list[Section]:
    """One section per task: the cell table, bars, heatmap, model selection and per-cell
    statistics."""
    return [_task_results(r, w, task, runs) for task, runs in r.tasks()]


def _task_results(r: Report, w: ReportWriter, task: dict[str, Any], runs: pd.DataFrame
                  ) -> Section:
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
    section.add(w.table(f"{w.prefix(task)}{r.metric}", f"{r.metric} ({label})",
                        cells.caption, cells=cells))
    n_text = f"n = {int(cells.stats['n'].min())}-{int(cells.stats['n'].max())} seeds per cell"
    section.add(w.fig(r.figure("bars", task), f"{w.prefix(task)}bars",
                      f"Final {r.metric} with confidence intervals",
                      f"Mean {r.metric} per cell; whiskers: {CI_TEXT} ({n_text})."))
    if "init" in r.cell or len(r.cell) > 1:
        section.add(w.fig(r.figure("heatmap", task), f"{w.prefix(task)}heatmap",
                          f"{r.metric}: {cells.rows} x {cells.cols}",
                          f"Mean {r.metric} per cell ({n_text}); grey: no completed "
                          "run."))
    selection = last_vs_best(runs, r.cell)
    peak = curve_peak(r.task_frame(r.epochs, task), r.cell)
    if not selection.empty:
        section.add(w.table(f"{w.prefix(task)}selection", "Last epoch vs best validation "
                            "epoch", "Test metric of the last epoch's weights and of the "
                            "best-validation epoch's weights (model selection on "
                            "validation), mean over completed runs.", frame=selection))
    if not peak.empty:
        section.add(w.table(f"{w.prefix(task)}peak",
                            "Best validation accuracy and its epoch",
                            "Per run the maximum of the validation-accuracy curve, "
                            "the epoch it was reached, and the last epoch's value; "
                            "mean over completed runs.", frame=peak))
    stats = cells.stats[[*r.cell, "n", "mean", "std", "median", "iqm", "ci_low",
                         "ci_high", "worst", "diverged"]]
    section.add(w.table(f"{w.prefix(task)}statistics", "Statistics per cell",
                        f"Mean, std, median, interquartile mean, {CI_TEXT}, worst "
                        "seed and diverged runs per cell.", frame=stats))
    return section


@register_section("comparisons", order=30, needs_results=True)
def comparisons(r: Report, w: ReportWriter) -> list[Section]:
    """Every cell against its task's baseline; ranks across tasks."""
    section = Section("Comparisons")
    table = compare_to_baseline(r.runs, r.metric, r.cell, r.baseline, r.task or None,
                                test=r.test, alpha=r.alpha,
                                higher_is_better=r.higher_is_better,
                                rope=r.rope / r.scale, effect=r.effect / r.scale)
    base = " / ".join(str(v) for v in r.baseline.values())
    if table.empty:
        section.paragraphs.append(f"No completed baseline runs ({base}) to compare with.")
    else:
        _frequentist(r, section, table, base)
        _verdicts(r, section, table)
        shown = table.drop(columns=["paired_std", "ci_half_width", "detectable",
                                    "seeds_needed"])
        section.add(w.table("baseline", f"Against the baseline ({base})",
                            f"difference = cell - baseline mean; p: {TESTS[r.test]}; "
                            "p_holm: Holm-adjusted; "
                            "p_improvement: probability that a run of the cell beats "
                            "a run of the baseline.", frame=shown))
        section.add(w.table("power", "Power: what these seeds can detect",
                            _power_caption(r), frame=_power_frame(r, table)))
        for sentence in _power_sentences(r, table):
            section.paragraphs.append(sentence)
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
        section.add(w.table("ranks", "Average ranks across tasks",
                            "1 = best on a task; ties share the mean rank.",
                            frame=ranked))
        section.add(w.fig(r.figure("cd"), "critical-difference",
                          "Critical-difference diagram",
                          f"Average ranks over {ranks.shape[0]} tasks; methods joined "
                          "by a bar are not significantly different (Nemenyi, "
                          f"α = {r.alpha}, Demšar 2006)."))
        section.add(w.table("pairwise", "Pairwise Wilcoxon-Holm across tasks",
                            "Every pair of methods over tasks, Holm-adjusted.",
                            frame=pairwise_wilcoxon_holm(ranks, r.alpha)))
    else:
        section.paragraphs.append(
            "Rank statistics across tasks (Friedman, critical differences) need at least "
            "2 tasks (model x dataset) and 3 methods with results on all of them; "
            f"this report has {ranks.shape[0]} task(s) and {ranks.shape[1]} method(s).")
    return [section]


def _frequentist(r: Report, section: Section, table: pd.DataFrame, base: str) -> None:
    """The significance tests' sentence (Wilcoxon or Welch with Holm)."""
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


def _verdicts(r: Report, section: Section, table: pd.DataFrame) -> None:
    """The Bayesian verdicts' sentence: which cells are better, equivalent, worse."""
    groups = []
    for verdict in ("better", "equivalent", "worse", "undecided"):
        rows = table[table["verdict"] == verdict]
        if len(rows):
            names = ", ".join(" / ".join(str(row[c]) for c in r.cell)
                              for _, row in rows.iterrows())
            groups.append(f"**{verdict}**: {names}")
    section.paragraphs.append(
        f"Bayesian verdicts (correlated t-test over seed pairs, Benavoli et al. 2017) with a "
        f"region of practical equivalence of ±{r.rope:g} points ({r.rope_source}; "
        "`--rope`): a cell is better, equivalent or worse when that region holds 95% of the "
        "posterior of its mean difference, else undecided (columns p_worse, p_equivalent, "
        "p_better and verdict of the table below). " + "; ".join(groups) + ".")


def _power_caption(r: Report) -> str:
    return (f"Per comparison: seed pairs, the std of the paired differences, the 95% CI "
            f"half-width of the difference, the smallest difference a two-sided paired "
            f"t-test detects with 80% power at α = {r.alpha} with these pairs, and the "
            f"seeds per cell that detecting {r.effect:g} points needs (`--effect`); all in "
            "metric points.")


def _power_frame(r: Report, table: pd.DataFrame) -> pd.DataFrame:
    frame = table[[*(r.task or []), *r.cell, "n_pairs"]].copy()
    frame["paired_std"] = table["paired_std"] * r.scale
    frame["ci_half_width"] = table["ci_half_width"] * r.scale
    frame["detectable_80%"] = table["detectable"] * r.scale
    frame[f"seeds_for_{r.effect:g}"] = table["seeds_needed"]
    return frame


def _power_sentences(r: Report, table: pd.DataFrame) -> list[str]:
    """One sentence per task: what its seeds can detect, and what the effect needs."""
    sentences = []
    groups = table.groupby(r.task, sort=False) if r.task else [((), table)]
    for key, rows in groups:
        rows = rows[rows["n_pairs"] >= 2]
        if rows.empty:
            continue
        key = key if isinstance(key, tuple) else (key,)
        where = f"On {', '.join(map(str, key))}: w" if r.task else "W"
        pairs = rows["n_pairs"]
        span = f"{pairs.min()}" + (f"-{pairs.max()}" if pairs.max() != pairs.min() else "")
        needed = rows["seeds_needed"].dropna()
        need_text = (f"detecting {r.effect:g} points needs {int(needed.median())} seeds per "
                     f"cell (median over comparisons; {int(needed.min())}-"
                     f"{int(needed.max())})" if len(needed) else
                     f"no number of seeds detects {r.effect:g} points here")
        sentences.append(
            f"{where}ith {span} seed pairs and a median paired std of "
            f"{rows['paired_std'].median() * r.scale:.2f} points, differences below "
            f"{rows['detectable'].median() * r.scale:.2f} points (median over comparisons) "
            f"are likely to be missed (80% power, α = {r.alpha}); {need_text}.")
    return sentences


@register_section("curves", order=40, needs_results=True)
def curves(r: Report, w: ReportWriter) -> list[Section]:
    """Metric and loss per epoch and against time, mean over seeds with bands."""
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
            name = f"{w.prefix(task)}{metric}" + ("" if x == "epoch" else f"-{x}")
            section.add(w.fig(figure, name, f"{title} ({label})",
                              f"{title}: mean over seeds with ±1 std band, "
                              f"{w.n_text(task)}; colour = activation."))
    return [section]


@register_section("lr_sweep", order=50, needs_results=True)
def lr_sweep(r: Report, w: ReportWriter) -> list[Section]:
    """The metric against the learning rate, when the lr is a cell axis."""
    if "lr" not in r.cell:
        return []
    section = Section("Learning-rate sweep")
    for task, _ in r.tasks():
        section.add(w.fig(r.figure("lr_sweep", task), f"{w.prefix(task)}lr-sweep",
                          f"{r.metric} vs learning rate ({r.task_label(task)})",
                          f"Mean final {r.metric} per learning rate "
                          f"({w.n_text(task)}); band: {CI_TEXT}."))
    return [section]


@register_section("convergence_and_cost", order=60, needs_results=True)
def convergence_and_cost(r: Report, w: ReportWriter) -> list[Section]:
    """Time to a fraction of the final accuracy; seconds, throughput and memory."""
    section = Section("Convergence and cost")
    for task, runs in r.tasks():
        label = r.task_label(task)
        speed = convergence(runs, r.cell)
        if not speed.empty:
            section.add(w.table(f"{w.prefix(task)}convergence", f"Convergence ({label})",
                                "Epochs and seconds until validation accuracy first "
                                "reaches 90% / 95% of its final value; area under "
                                "the training-loss curve.", frame=speed))
        spend = cost(runs, r.task_frame(r.epochs, task), r.cell)
        section.add(w.table(f"{w.prefix(task)}cost", f"Cost ({label})",
                            "Seconds per epoch, training images per second, peak "
                            "memory (MB), parameters.", frame=spend))
        section.add(w.fig(r.figure("cost", task), f"{w.prefix(task)}epoch-time",
                          f"Seconds per epoch per activation ({label})",
                          "Mean wall time of a training epoch (with evaluation)."))
    return [section]


@register_section("learnable", order=70, needs_results=True)
def learnable(r: Report, w: ReportWriter) -> list[Section]:
    """Learnable activations' parameters per epoch and their final values per site."""
    if r.params.empty:
        return []
    section = Section("Learnable activations")
    section.paragraphs.append("Values of each learnable activation parameter per site "
                              "(epoch 0 = at initialization), mean over seeds.")
    for task, _ in r.tasks():
        params = r.task_frame(r.params, task)
        for act in dict.fromkeys(params["act"]):
            names = params.loc[params["act"] == act, "name"].nunique()
            first = (f" The first {figures.MAX_PARAMETER_PANELS} of its {names} parameters; "
                     "the table below lists all." if names > figures.MAX_PARAMETER_PANELS
                     else "")
            section.add(w.fig(r.figure("parameters", task, act=act),
                              f"{w.prefix(task)}params-{slug(act)}",
                              f"{act}: parameters per epoch ({r.task_label(task)})",
                              f"One line per site, in network order.{first}"))
            section.add(w.fig(r.figure("parameter_finals", task, act=act),
                              f"{w.prefix(task)}params-final-{slug(act)}",
                              f"{act}: final values per site",
                              f"Mean over seeds; whiskers: min-max over seeds.{first}"))
            data = params[params["act"] == act]
            last = data[data["epoch"] == data.groupby("run_id")["epoch"].transform("max")]
            finals = (last.groupby(["site", "name"], sort=False)["value"]
                      .agg(["mean", "std", "min", "max"]).reset_index())
            section.add(w.table(f"{w.prefix(task)}params-{slug(act)}",
                                f"{act}: final parameter values",
                                "Per site and parameter over seeds.", frame=finals))
    return [section]


@register_section("layers", order=80, needs_results=True)
def layers(r: Report, w: ReportWriter) -> list[Section]:
    """Per-layer weight statistics, gradient norms and dead units over epochs."""
    if r.layers.empty:
        return []
    section = Section("Layers")
    section.paragraphs.append("Per-layer measurements over epochs (mean over seeds): "
                              "average weight and its spread, gradient norm (mean over "
                              "the epoch's steps), fraction of dead units.")
    for task, _ in r.tasks():
        measured = r.task_frame(r.layers, task)
        for metric in dict.fromkeys(measured["metric"]):
            section.add(w.fig(r.figure("layers", task, metric=metric),
                              f"{w.prefix(task)}layers-{metric}",
                              f"{figures.label(metric)} per layer ({r.task_label(task)})",
                              "First layers in network order; one colour per "
                              "activation."))
    return [section]


@register_section("confusion", order=90, needs_results=True)
def confusion(r: Report, w: ReportWriter) -> list[Section]:
    """The confusion matrix of each task's best run."""
    section = Section("Best run")
    for task, _ in r.tasks():
        run = r.best_run(task)
        section.add(w.fig(r.figure("confusion", task), f"{w.prefix(task)}confusion",
                          f"Confusion matrix of the best run ({r.task_label(task)})",
                          f"{r.describe_run(run)}: {r.metric} "
                          f"{run[r.metric] * r.scale:.2f}; rows: true class."))
    return [section]


@register_section("divergent", order=110)
def divergent(r: Report, w: ReportWriter) -> list[Section]:
    """Every diverged or failed run with its reason, and the divergence rate per cell."""
    section = Section("Divergent and failed runs")
    bad = r.runs[r.runs["status"].isin(["diverged", "failed"])] if not r.runs.empty \
        else r.runs
    if bad.empty:
        section.paragraphs.append("None: every finished run trained to the end with a "
                                  "finite loss.")
        return [section]
    for row in bad.itertuples():
        why = (f"diverged in epoch {int(row.diverged_epoch)}: {row.reason}"
               if row.status == "diverged"
               else f"failed: {str(row.error).strip().splitlines()[-1]}")
        cell = " / ".join(str(getattr(row, c)) for c in r.cell)
        section.add(f"{row.model} {cell} seed {row.seed} ({row.run_id}): {why}")
    rates = r.stats[[*r.task, *r.cell, "diverged", "failed", "divergence_rate"]]
    rates = rates[(rates["diverged"] > 0) | (rates["failed"] > 0)]
    if not rates.empty:
        section.add(w.table("divergence", "Divergence per cell",
                            "Diverged and failed runs per cell and the divergence "
                            "rate over the cell's runs.", frame=rates))
    listed = divergent_runs(r.runs, [*r.task, *r.cell])
    if not listed.empty:
        (w.out / "tables").mkdir(parents=True, exist_ok=True)
        listed.to_csv(w.out / "tables" / "divergent-runs.csv", index=False)
    return [section]


@register_section("environment", order=120)
def environment(r: Report, w: ReportWriter) -> list[Section]:
    """Where the runs were trained (every distinct environment) and the report's files."""
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
    return [section]


@register_section("plugins", order=130)
def plugin_sources(r: Report, w: ReportWriter) -> list[Section]:
    """Appendix: the source of every plug-in the studies were planned with (the code
    behind a user's own activation is part of the result), and how many finished runs
    of an earlier plan (an edited plug-in) the report leaves out."""
    shown: dict[str, tuple[str, str, list[str]]] = {}  # digest -> origin, text, studies
    for name, spec in r.specs.items():
        for source in spec.get("plugins", []):
            digest = PluginSource.model_validate(source).digest
            shown.setdefault(digest, (source["origin"], source["text"], []))[2].append(name)
    if not shown:
        return []
    stale = sum(view.finished_out_of_plan() for view in r.views.values())
    section = Section("Appendix: plug-ins")
    section.paragraphs.append(
        "The studies use components of their own, registered by these plug-ins "
        "(docs/extending.md). A plug-in's digest (SHA-256 of its text) is part of the run "
        "id of every run that uses one of its components: an edited plug-in gives new "
        "runs, never a mix of old and new code.")
    for digest, (origin, text, studies) in shown.items():
        section.add(CodeItem(f"{origin} (digest {digest}; {', '.join(studies)})", text))
    if stale:
        section.paragraphs.append(
            f"{stale} finished run{'s' if stale != 1 else ''} of an earlier plan of these "
            "studies (re-planned after an edit of the study file or of a plug-in) "
            f"{'are' if stale != 1 else 'is'} kept in the store and left out of this "
            "report.")
    return [section]


# What decides a run's numbers (spec.RESULT_ENVIRONMENT), and the Python version.
ENV_SHOWN = (*RESULT_ENVIRONMENT, "python")


def _environments(report: Report) -> tuple[dict[tuple, int], int, int]:
    """Runs per distinct environment (the fields :func:`_describe_env` shows), how many
    runs were resumed in another environment than the one that started them, and how
    many asked for torch.compile and trained eagerly."""
    counts: dict[tuple, int] = {}
    resumed_elsewhere = eager = 0
    for view in report.views.values():
        for info in view.infos():
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
