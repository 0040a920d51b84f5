"""The study report: a folder with ``report.md``, figures and CSV files.

Layout of ``OUT/``::

    report.md            summary, setup, tables, figures, divergent runs, environment
    runs.csv             one row per run (spec fields, status, final metrics)
    epochs.csv           one row per run and epoch
    figures/*.png        curves with ±1 std bands over seeds
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from actlab.analysis import format_mean_std, pivot_mean_std, summarize
from actlab.report.figures import colour_map, save
from actlab.report.figures import curves as curves_figure
from actlab.study.store import Store

log = logging.getLogger(__name__)

FINAL_METRICS = (
    ("test_acc", "test top-1 (%)", 100.0),
    ("test_top3", "test top-3 (%)", 100.0),
    ("test_macro_precision", "macro precision (%)", 100.0),
    ("test_loss", "test loss", 1.0),
)


def _markdown_table(frame: pd.DataFrame, index_name: str) -> str:
    header = [index_name, *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        lines.append("| " + " | ".join([str(index), *map(str, row.tolist())]) + " |")
    return "\n".join(lines)


def _bold_best(table: pd.DataFrame, summary: pd.DataFrame, rows: str, cols: str,
               higher_is_better: bool = True) -> pd.DataFrame:
    ranked = summary[summary["n"] > 0]
    if ranked.empty:
        return table
    best = ranked.loc[ranked["mean"].idxmax() if higher_is_better else ranked["mean"].idxmin()]
    table = table.copy()
    table.loc[best[rows], best[cols]] = f"**{table.loc[best[rows], best[cols]]}**"
    return table


def _setup_lines(spec: dict, runs: pd.DataFrame, info: dict) -> list[str]:
    base = spec.get("base", {})
    train = base.get("train", {})
    data = base.get("data", {})
    optimizer = train.get("optimizer", {})
    grid = spec.get("grid", {})
    seeds = spec.get("seeds")
    lines = [
        f"- models: {', '.join(dict.fromkeys(runs['model']))}",
        f"- dataset: {', '.join(dict.fromkeys(runs['dataset']))}"
        + (f" (train {info.get('train_size')}, validation {info.get('val_size')}, "
           f"test {info.get('test_size')} images)" if info else "")
        + (f"; {data['train_per_class']} training images per class"
           if data.get("train_per_class") else ""),
        f"- activations: {', '.join(dict.fromkeys(runs['act']))}",
        f"- initializers: {', '.join(dict.fromkeys(runs['init']))} "
        f"(gain: {base.get('gain', 'matched')})",
        f"- training: {train.get('epochs', 10)} epochs, batch {train.get('batch_size', 128)}, "
        f"{optimizer.get('name', 'sgd')} lr {optimizer.get('lr', 0.01)}, "
        f"schedule {train.get('schedule', 'fixed')}",
        f"- seeds: {seeds if isinstance(seeds, int) else len(seeds)} per cell",
        f"- grid axes: {', '.join(grid) or 'none'}",
    ]
    return lines


def write_report(store: Store, study: str, out_dir: str | Path) -> Path:
    """Write the report of ``study`` into ``out_dir``; returns the path of report.md."""
    out = Path(out_dir)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    study_id = store.study_id(study)
    spec = store.study_spec(study_id)
    runs = store.runs_frame(study_id)
    epochs = store.epochs_frame(study_id)
    runs.to_csv(out / "runs.csv", index=False)
    epochs.to_csv(out / "epochs.csv", index=False)
    counts = store.counts(study_id)
    info_row = store.conn.execute(
        "SELECT info FROM runs WHERE study_id=? AND info IS NOT NULL LIMIT 1",
        (study_id,)).fetchone()
    info = json.loads(info_row["info"]) if info_row else {}

    lines = [f"# Study report: {study}", ""]
    if spec.get("description"):
        lines += [spec["description"].strip(), ""]
    total = sum(counts.values())
    lines += [
        f"**Runs:** {counts['completed']} completed, {counts['diverged']} diverged, "
        f"{counts['failed']} failed, {counts['pending'] + counts['running']} not yet run "
        f"(of {total}).", "",
        "## Setup", "", *_setup_lines(spec, runs, info), "",
    ]
    finished = runs[runs["status"] == "completed"]
    if finished.empty:
        lines += ["No completed runs yet: run the study with `actlab run`.", ""]
    else:
        groups = list(runs.groupby(["model", "dataset"], sort=False))
        for (model, dataset), group in groups:
            heading = "" if len(groups) == 1 else f" — {model} on {dataset}"
            summary = summarize(group, "test_acc", ["act", "init"])
            table = _bold_best(pivot_mean_std(summary, "act", "init"), summary, "act", "init")
            lines += [
                f"## Test accuracy{heading}", "",
                "Top-1 test accuracy (%) at the last epoch, mean ± std over seeds, with the "
                "number of completed runs behind each number; the best cell is in bold. "
                "Rows are activations, columns initializers.", "",
                _markdown_table(table, "activation \\ init"), "",
            ]
            lines += ["## All final metrics" + heading, "",
                      "Mean ± std (n) over seeds; diverged and failed runs are counted, not "
                      "averaged.", ""]
            wide = None
            for metric, title, scale in FINAL_METRICS:
                if metric not in group:
                    continue
                part = summarize(group, metric, ["act", "init"])
                digits = 2 if scale != 1.0 else 4
                part[title] = [format_mean_std(m, s, n, scale, digits) for m, s, n in
                               zip(part["mean"], part["std"], part["n"], strict=True)]
                counts = part[["act", "init", "diverged", "failed"]]
                part = part[["act", "init", title]]
                wide = part if wide is None else wide.merge(part, on=["act", "init"])
            per_epoch = group[group["status"] == "completed"].assign(
                s_per_epoch=lambda f: f["wall_time"] / f["epochs"])
            timing = per_epoch.groupby(["act", "init"], sort=False)["s_per_epoch"].mean()
            wide = wide.merge(counts, on=["act", "init"])
            wide["s/epoch"] = [f"{timing.get((a, i), float('nan')):.2f}"
                               for a, i in zip(wide["act"], wide["init"], strict=True)]
            wide = wide.set_index(wide["act"] + " / " + wide["init"]).drop(columns=["act",
                                                                                     "init"])
            lines += [_markdown_table(wide, "activation / init"), ""]

        colours = colour_map(list(dict.fromkeys(runs["act"])))
        lines += ["## Curves", "",
                  "Mean over seeds per epoch; the band is ±1 standard deviation across seeds. "
                  "Completed runs only. One panel per initializer.", ""]
        for metric, title in (("val_acc", "Validation accuracy"),
                              ("train_loss", "Training loss"), ("val_loss", "Validation loss")):
            if epochs.empty:
                break
            fig = curves_figure(epochs, metric, hue="act", panel="init", colours=colours)
            path = save(fig, figures / f"{metric}.png")
            lines += [f"### {title}", "", f"![{title} per epoch](figures/{path.name})", ""]

    bad = runs[runs["status"].isin(["diverged", "failed"])]
    lines += ["## Divergent and failed runs", ""]
    if bad.empty:
        lines += ["None: every finished run trained to the end with a finite loss.", ""]
    else:
        for row in bad.itertuples():
            why = (f"diverged in epoch {int(row.diverged_epoch)}: {row.reason}"
                   if row.status == "diverged"
                   else f"failed: {str(row.error).strip().splitlines()[-1]}")
            lines.append(f"- {row.act} / {row.init} seed {row.seed} ({row.run_id}): {why}")
        lines.append("")
    env = info.get("env", {})
    if env:
        lines += ["## Environment", "",
                  f"actlab {env.get('actlab')} (commit {env.get('git_commit') or 'unknown'}), "
                  f"torch {env.get('torch')}, Python {env.get('python')}, device "
                  f"{env.get('device')} ({env.get('device_name')}), {env.get('threads')} "
                  "threads. Every run's full spec and environment are in the store.", ""]
    lines += ["## Files", "", "- `runs.csv`: one row per run, spec fields and final metrics",
              "- `epochs.csv`: one row per run and epoch", "- `figures/`: the figures above", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    log.info("wrote %s", report)
    return report

