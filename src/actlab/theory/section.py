"""The theory section of a study report: what theory says about the study's own
activations and initializers, computed without training. Registered in the report's
section registry (:mod:`actlab.report.sections`) through the ``actlab.report_sections``
entry point, so that the report package does not import the theory."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from actlab.data.base import dataset_shape
from actlab.report.build import Report
from actlab.report.document import Section, slug
from actlab.report.sections import ReportWriter, register_section
from actlab.theory.catalog import catalog
from actlab.theory.meanfield import phase_diagram
from actlab.theory.report import function_figure, learned_figure, propagation_figure
from actlab.theory.study import (
    chi1_table,
    learned_functions,
    model_propagation,
    propagation_summary,
)


@register_section("theory", order=100)
def theory_section(report: Report, writer: ReportWriter) -> list[Section]:
    """The theory of a study's own activations and initializers: their catalog and
    functions, the mean-field phase each initializer puts each activation in, signal
    propagation at init through the study's models, and the learnable activations'
    functions at their learned values per site."""
    if report.runs.empty:
        return []
    prefix = writer.prefix
    runs = report.runs
    acts = list(dict.fromkeys(runs["act"]))
    inits = list(dict.fromkeys(runs["init"])) if "init" in runs else []
    section = Section("Theory")
    section.paragraphs.append(
        "What theory says about this study's activations and initializers, computed "
        "without training (docs/theory.md; `actlab theory` draws the same for any set).")
    section.add(writer.table("theory-catalog", "Activation catalog",
                             "Declared properties; f(0), f'(0); moments over z ~ N(0, 1); "
                             "matched and PyTorch gains; forward+backward time relative to "
                             "ReLU measured on the machine that wrote this report (once per "
                             "machine, torch version and thread count; then cached).",
                             catalog(acts)))
    section.add(writer.fig(function_figure(acts, report.colours), "theory-functions",
                           "f and f'", "Learnable activations at their initial values."))
    if inits:
        phases = chi1_table(acts, inits)
        phases["critical_sw"] = phases["act"].map(
            {act: phase_diagram(act, [0.0])["critical_sw"].iloc[0] for act in acts})
        by_phase = {p: [f"{r.act} / {r.init}" for r in phases.itertuples() if r.phase == p]
                    for p in ("critical", "ordered", "chaotic")}
        section.paragraphs.append(
            "Mean field (Poole et al. 2016; Schoenholz et al. 2017), at the σw and σb each "
            "initializer draws for a width-256 layer: " + "; ".join(
                f"{phase}: {', '.join(cells)}" for phase, cells in by_phase.items() if cells)
            + ". Ordered (χ₁ < 1): signals and gradients shrink with depth; chaotic "
              "(χ₁ > 1): they grow; critical: within 5% of the edge of chaos.")
        section.add(writer.table("theory-chi1", "Mean-field χ₁ per activation and "
                                 "initializer", "σw² = fan_in · Var(W) and σb as drawn; "
                                 "q*: fixed point of the variance map (a rectifier's is "
                                 "neutral at σw = √2 and drifts to 0 or infinity off it); "
                                 "critical_sw: the edge of chaos at σb = 0.", phases))
    for task, task_runs in report.tasks():
        _add_model_propagation(section, report, writer, task, task_runs, prefix(task))
    if not report.params.empty:
        x = torch.linspace(-4.0, 4.0, 241, dtype=torch.float64)
        for task, _ in report.tasks():
            curves = learned_functions(report.task_frame(report.params, task), x)
            for act in dict.fromkeys(curves["act"]):
                section.add(writer.fig(
                    learned_figure(curves, act),
                    f"{prefix(task)}theory-learned-{slug(act)}",
                    f"{act} as learned, per site ({report.task_label(task)})",
                    "Parameters averaged over seeds; grey dashed: first recorded epoch "
                    "(initial values), coloured: last epoch, dark = early layers. "
                    "Per-channel sites show the mean over channels."))
    return [section]


def _add_model_propagation(section: Section, report: Report, writer: ReportWriter,
                           task: dict[str, Any], runs: pd.DataFrame, prefix: str) -> None:
    """Per-layer variance and gradient norm at init through the task's model, one line
    per activation, one panel per initializer, with a summary table."""
    label = report.task_label(task)
    records, missing = [], []
    for row in runs.drop_duplicates(["act", "init"]).itertuples():
        view = report.views[row.study]
        spec = view.run_spec(row.run_id)
        shape, classes = _input_shape(view.run_info(row.run_id), spec)
        if shape is None:
            missing.append(f"{row.act} / {row.init}")
            continue
        frame = model_propagation(spec.model, spec.act, spec.init, shape, classes,
                                  spec.model_options, spec.gain)
        records.append(frame.assign(act=row.act, init=row.init))
    if missing:
        section.paragraphs.append(
            f"Signal propagation ({label}) skipped for {', '.join(missing)}: the input "
            "shape of this dataset is known once one of its runs has started.")
    if not records:
        return
    frame = pd.concat(records, ignore_index=True)
    model = runs["model"].iloc[0]
    section.add(writer.fig(
        propagation_figure(frame, "pre_variance", report.colours),
        f"{prefix}theory-model-variance", f"{model}: pre-activation variance per layer at "
        f"init ({label})", "Output variance of every convolution and linear layer "
        "(before normalization) for a batch of 8 N(0, 1) inputs, float64, in forward "
        "order; green band [1e-3, 1e3]."))
    section.add(writer.fig(
        propagation_figure(frame, "grad_norm", report.colours),
        f"{prefix}theory-model-grad", f"{model}: weight-gradient norm per layer at init "
        f"({label})", "Cross-entropy against random labels, same batch; a wide spread "
        "between layers means some layers barely learn at the start."))
    summary = pd.DataFrame([{"act": act, "init": init, **propagation_summary(group)}
                            for (act, init), group in frame.groupby(["act", "init"],
                                                                    sort=False)])
    summary["escape_layer"] = summary["escape_layer"].map(
        lambda v: "holds" if v is None or pd.isna(v) else str(int(v)))
    section.add(writer.table(
        f"{prefix}theory-model-propagation", f"{model}: propagation at init ({label})",
        "variance_last_over_first: last layer's pre-activation variance over the first's; "
        "grad_spread: largest over smallest weight-gradient norm across layers; "
        "escape_layer: first layer whose variance leaves [1e-3, 1e3].", summary))


def _input_shape(info: dict[str, Any], spec: Any) -> tuple[list[int] | None, int]:
    """(C, H, W) and the class count of a run's data: as the run recorded them, else as
    the dataset declares them (None when only loading the data would tell)."""
    if info.get("input_shape") and info.get("num_classes"):
        return list(info["input_shape"]), int(info["num_classes"])
    shape = dataset_shape(spec.data.name, spec.data.options)
    if None in (shape.channels, shape.image_size, shape.num_classes):
        return None, 0
    return [shape.channels, shape.image_size, shape.image_size], int(shape.num_classes)
