"""``actlab theory``: the AF catalog, f and f' plots, signal propagation at init for each
AF x WI, the depth at which the signal escapes [1e-3, 1e3], and mean-field phase
diagrams, written as index.html + report.md + tables/ + figures/ (the report's renderer).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch

from actlab.activations.gains import float64_function
from actlab.report import figures
from actlab.report.document import ItemWriter, Section
from actlab.theory.catalog import catalog
from actlab.theory.meanfield import derivative, phase_diagram
from actlab.theory.propagation import escape_depth, signal_propagation
from actlab.theory.study import chi1_table

log = logging.getLogger(__name__)

DEFAULT_ACTS = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu", "mish", "tanh", "sigmoid",
                "softplus")
DEFAULT_INITS = ("he_normal", "xavier_normal(gain=1.0)", "lecun_normal", "orthogonal",
                 "normal")


def function_figure(acts: Sequence[str], colours: figures.Colours,
                    span: float = 4.0) -> plt.Figure:
    """f and f' of each activation on shared axes (learnable ones at initial values)."""
    x = torch.linspace(-span, span, 401, dtype=torch.float64)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for act in acts:
        with torch.no_grad():
            y = float64_function(act)(x)
        dy = derivative(act)(x)
        left.plot(x, y, label=act, color=colours.get(act), lw=1.5)
        right.plot(x, dy, label=act, color=colours.get(act), lw=1.5)
    for ax, title in ((left, "f(x)"), (right, "f'(x)")):
        ax.axhline(0, color="0.6", lw=0.7)
        ax.axvline(0, color="0.6", lw=0.7)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    left.set_ylim(-2, span)
    right.set_ylim(-0.5, 1.6)
    right.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def propagation_figure(frame: pd.DataFrame, value: str, colours: figures.Colours
                       ) -> plt.Figure:
    """``value`` (pre-activation variance or gradient norm) per layer, log axis, one panel
    per initializer, one line per activation."""
    inits = list(dict.fromkeys(frame["init"]))
    fig, axes = plt.subplots(1, len(inits), figsize=(3.6 * len(inits), 3.4), sharey=True,
                             squeeze=False)
    for ax, init in zip(axes[0], inits, strict=True):
        for act, group in frame[frame["init"] == init].groupby("act", sort=False):
            values = group[value].clip(lower=1e-300, upper=1e300)
            ax.plot(group["layer"], values, color=colours.get(act), label=act, lw=1.3)
        ax.axhspan(1e-3, 1e3, color="tab:green", alpha=0.06, lw=0)
        ax.set_yscale("log")
        ax.set_title(init, fontsize=9)
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("pre-activation variance" if value == "pre_variance"
                          else "weight-gradient norm")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def phase_figure(boundaries: pd.DataFrame, colours: figures.Colours) -> plt.Figure:
    """Critical weight std against bias std per activation: below a curve its AF is in
    the ordered phase (vanishing), above it chaotic (exploding)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for act, group in boundaries.groupby("act", sort=False):
        ax.plot(group["sb"], group["critical_sw"], marker="o", ms=3, label=act,
                color=colours.get(act))
    ax.set_xlabel("bias std  $\\sigma_b$")
    ax.set_ylabel("critical weight std  $\\sigma_w$")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def learned_figure(curves: pd.DataFrame, act: str) -> plt.Figure:
    """f and f' of one learnable activation per site: thin grey at the first recorded
    epoch, coloured by depth (dark = first site) at the last."""
    data = curves[curves["act"] == act]
    sites = list(dict.fromkeys(data["site"]))
    cmap = plt.get_cmap("viridis")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for stage, group in data.groupby("stage", sort=False):
        for site, line in group.groupby("site", sort=False):
            depth = sites.index(site)
            colour = ("0.65" if stage == "initial"
                      else cmap(depth / max(1, len(sites) - 1)))
            style = {"lw": 0.9, "ls": "--"} if stage == "initial" else {"lw": 1.5}
            label = site if stage == "learned" else None
            left.plot(line["x"], line["f"], color=colour, label=label, **style)
            right.plot(line["x"], line["df"], color=colour, **style)
    for ax, title in ((left, f"{act}: f(x)"), (right, f"{act}: f'(x)")):
        ax.axhline(0, color="0.6", lw=0.7)
        ax.axvline(0, color="0.6", lw=0.7)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    if len(sites) <= 12:
        left.legend(fontsize=7, frameon=False, title="site (learned)", title_fontsize=7)
    fig.tight_layout()
    return fig


def theory_sections(acts: Sequence[str], inits: Sequence[str], out: Path, depth: int = 50,
                    width: int = 256, kind: str = "fc", svg: bool = True) -> list[Section]:
    """Compute everything and write its figures (PNG, and SVG if ``svg``) and tables
    under ``out``."""
    colours = figures.colour_map(list(acts))
    writer = ItemWriter(out, svg=svg)
    table, fig = writer.table, writer.fig

    sections = []
    catalog_section = Section("Activation functions")
    rows = catalog(acts)
    catalog_section.add(table("catalog", "Catalog", "Declared properties; f(0) and f'(0) "
                              "(autograd's value at a kink); moments over z ~ N(0, 1); the "
                              "matched gain 1/sqrt(E[f²]) and PyTorch's gain where it has "
                              "one; forward+backward time relative to ReLU, measured on this "
                              "machine (once; kept in $ACTLAB_CACHE/af-cost.json).",
                              rows))
    catalog_section.add(fig(function_figure(acts, colours), "functions", "f and f'",
                            "Learnable activations at their initial values."))
    sections.append(catalog_section)

    records = []
    for init in inits:
        for act in acts:
            frame = signal_propagation(act, init, depth=depth, width=width, kind=kind,
                                       batch=64 if kind == "fc" else 4)
            records.append(frame.assign(act=act, init=init))
    propagation = pd.concat(records, ignore_index=True)
    section = Section("Signal propagation at initialization")
    section.paragraphs.append(
        f"A plain {'fully connected' if kind == 'fc' else 'convolutional'} network of "
        f"{depth} layers of width {width}, no normalization, N(0, 1) inputs, float64. "
        "The green band is [1e-3, 1e3].")
    section.add(fig(propagation_figure(propagation, "pre_variance", colours), "pre-variance",
                    "Pre-activation variance per layer", "Vanishing below, exploding above."))
    section.add(fig(propagation_figure(propagation, "grad_norm", colours), "grad-norm",
                    "Weight-gradient norm per layer", "For the loss mean(output²)/2."))
    escapes = (propagation.groupby(["act", "init"], sort=False)["pre_variance"]
               .apply(escape_depth).unstack("init"))
    escapes = escapes.reindex(index=list(acts), columns=list(inits)).map(
        lambda v: "holds" if v is None or (isinstance(v, float) and math.isnan(v))
        else f"{int(v)}")
    section.add(table("escape-depth", "Depth at which the signal leaves [1e-3, 1e3]",
                      f"First layer whose pre-activation variance leaves the band; 'holds': "
                      f"within it for all {depth} layers.", escapes.reset_index()))
    sections.append(section)

    boundaries = pd.concat([phase_diagram(act).assign(act=act) for act in acts],
                           ignore_index=True)
    phase = Section("Mean-field phase diagram")
    phase.paragraphs.append(
        "Poole et al. 2016 / Schoenholz et al. 2017: with W ~ N(0, σw²/fan_in) and "
        "b ~ N(0, σb²), χ₁ = σw² E[f'(√q* z)²] = 1 at the edge of chaos. Below a curve the "
        "activation is ordered (signals and gradients vanish), above it chaotic (they "
        "explode). Missing points: no edge of chaos for σw in [0.05, 6].")
    phase.add(fig(phase_figure(boundaries, colours), "phase-diagram", "Order/chaos boundary",
                  "Critical σw per σb, per activation."))
    phase.add(table("phase-diagram", "Critical weight std", "σb, critical σw and the "
                    "fixed point q* there.", boundaries[["act", "sb", "critical_sw",
                                                         "q_star"]]))
    phase.add(table("chi1", "Where each initializer puts each activation",
                    f"χ₁ at the σw = √(fan_in · Var W) and σb each initializer draws for a "
                    f"width-{width} layer; q*: fixed point (— where the map has no finite "
                    "nonzero one; a rectifier's q* is neutral at σw = √2 and drifts to 0 or "
                    "infinity off it); phase: ordered (χ₁ < 0.95), critical, chaotic (> 1.05).",
                    chi1_table(acts, inits, width)))
    sections.append(phase)
    return sections


def write_theory(out: str | Path, acts: Sequence[str] = DEFAULT_ACTS,
                 inits: Sequence[str] = DEFAULT_INITS, depth: int = 50, width: int = 256,
                 kind: str = "fc", svg: bool = True) -> dict[str, Path]:
    """Write the theory report into ``out``; returns the paths of index.html and
    report.md; ``svg=False`` writes the figures as PNG only."""
    from actlab.report.render import render_html, render_markdown

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections = theory_sections(acts, inits, out, depth, width, kind, svg)
    title = "Theory: activations and initializers at initialization"
    (out / "report.md").write_text(render_markdown(title, sections))
    (out / "index.html").write_text(render_html(title, sections, out, self_contained=False))
    log.info("wrote %s", out / "index.html")
    return {"html": out / "index.html", "markdown": out / "report.md"}
