"""Figures (matplotlib, Agg backend). Every function takes frames from the store or from
``actlab.analysis`` and returns a Figure; :func:`save` writes it as PNG and SVG.

Colours: one fixed colour per activation for a whole report (:func:`colour_map`), so a
curve, a bar and a trajectory of the same AF look alike everywhere. Bands and whiskers
are what the captions say: ±1 std over seeds for curves, bootstrap CIs for bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from actlab.analysis import curve_band

Colours = dict[str, tuple[float, ...]]

METRIC_LABELS = {
    "train_loss": "training loss", "val_loss": "validation loss",
    "train_acc": "training accuracy", "val_acc": "validation accuracy", "lr": "learning rate",
    "test_acc": "test accuracy", "test_loss": "test loss", "weight_mean": "mean weight",
    "weight_std": "weight std", "grad_norm": "gradient norm", "dead_fraction": "dead units",
}


def label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def colour_map(names: Sequence[str]) -> Colours:
    """One fixed colour per name (in the given order), the same in every figure."""
    palette = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: palette(i % palette.N) for i, name in enumerate(names)}


def save(fig: plt.Figure, path: Path, formats: Sequence[str] = ("png", "svg")) -> Path:
    """Write ``fig`` as ``path`` with each suffix in ``formats``; returns the PNG path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in formats:
        target = path.with_suffix(f".{suffix}")
        fig.savefig(target, dpi=120, bbox_inches="tight")
        written.append(target)
    plt.close(fig)
    return written[0]


def _panels(count: int, width: float = 4.2, height: float = 3.4, sharey: bool = True
            ) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(1, max(1, count), figsize=(width * max(1, count), height),
                             sharey=sharey, squeeze=False)
    return fig, axes[0]


def _legend(fig: plt.Figure, ax: plt.Axes, title: str) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5),
                   frameon=False, title=title)


def curves(epochs: pd.DataFrame, metric: str, hue: str, panel: str, colours: Colours,
           x: str = "epoch", styles: dict[str, str] | None = None,
           legend_title: str | None = None) -> plt.Figure:
    """``metric`` per epoch (``x='epoch'``) or against cumulative training time
    (``x='time'``), one line per ``hue`` value with a ±1 std band over seeds, one panel
    per ``panel`` value. Completed runs only."""
    data = epochs.copy()
    if x == "time":
        data["elapsed"] = data.groupby("run_id")["epoch_time"].cumsum()
    band = curve_band(data, metric, [panel, hue])
    if x == "time":
        elapsed = curve_band(data, "elapsed", [panel, hue])
        band["x"] = elapsed["mean"].to_numpy()
    else:
        band["x"] = band["epoch"]
    panels = list(dict.fromkeys(data[panel]))
    fig, axes = _panels(len(panels))
    for ax, value in zip(axes, panels, strict=True):
        for name, group in band[band[panel] == value].groupby(hue, sort=False):
            colour = colours.get(name)
            std = group["std"].fillna(0.0)
            ax.plot(group["x"], group["mean"], label=name, color=colour, lw=1.6,
                    linestyle=(styles or {}).get(name, "-"))
            ax.fill_between(group["x"], group["mean"] - std, group["mean"] + std,
                            color=colour, alpha=0.18, lw=0)
        ax.set_title(f"{panel} = {value}", fontsize=10)
        ax.set_xlabel("epoch" if x == "epoch" else "training time (s)")
        if x == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if metric.endswith("loss"):
            ax.set_yscale("log")
    axes[0].set_ylabel(label(metric))
    _legend(fig, axes[0], legend_title or hue)
    fig.tight_layout()
    return fig


def final_bars(stats: pd.DataFrame, metric: str, hue: str, group: str, colours: Colours,
               scale: float = 100.0) -> plt.Figure:
    """Mean final ``metric`` per ``hue`` (bars) within each ``group`` value, with
    bootstrap-CI whiskers; cells without completed runs are left empty."""
    groups = list(dict.fromkeys(stats[group]))
    hues = list(dict.fromkeys(stats[hue]))
    width = 0.8 / max(1, len(hues))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(groups) * max(1, len(hues)) * 0.5),
                                    3.6))
    for i, name in enumerate(hues):
        rows = stats[stats[hue] == name].set_index(group).reindex(groups)
        positions = np.arange(len(groups)) + (i - (len(hues) - 1) / 2) * width
        means = rows["mean"].to_numpy(dtype=float) * scale
        low = (rows["mean"] - rows["ci_low"]).to_numpy(dtype=float) * scale
        high = (rows["ci_high"] - rows["mean"]).to_numpy(dtype=float) * scale
        ax.bar(positions, means, width, label=name, color=colours.get(name))
        # A cell whose seeds agree exactly has a CI of width 0, which rounding can make
        # a hair negative; matplotlib refuses negative error bars.
        low, high = (np.clip(np.nan_to_num(v), 0.0, None) for v in (low, high))
        ax.errorbar(positions, means, yerr=[low, high],
                    fmt="none", ecolor="0.2", capsize=2, lw=0.9)
    ax.set_xticks(np.arange(len(groups)), [str(g) for g in groups], rotation=20, ha="right")
    finite = stats["mean"].dropna() * scale
    if len(finite):
        spread = max(float(finite.max() - finite.min()), 1e-6)
        ax.set_ylim(max(0.0, float(finite.min()) - 1.5 * spread), float(finite.max()) + spread)
    ax.set_ylabel(label(metric) + (" (%)" if scale == 100 else ""))
    ax.grid(axis="y", alpha=0.3)
    _legend(fig, ax, hue)
    fig.tight_layout()
    return fig


def heatmap(stats: pd.DataFrame, rows: str, cols: str, metric: str, scale: float = 100.0,
            higher_is_better: bool = True) -> plt.Figure:
    """Mean ``metric`` of each ``rows`` x ``cols`` cell, annotated; empty cells grey."""
    table = stats.pivot(index=rows, columns=cols, values="mean")
    table = table.reindex(index=list(dict.fromkeys(stats[rows])),
                          columns=list(dict.fromkeys(stats[cols]))) * scale
    fig, ax = plt.subplots(figsize=(1.3 * len(table.columns) + 2.4, 0.45 * len(table) + 1.6))
    cmap = plt.get_cmap("viridis" if higher_is_better else "viridis_r").with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(table.to_numpy(dtype=float)), cmap=cmap,
                      aspect="auto")
    ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns], rotation=20,
                  ha="right")
    ax.set_yticks(range(len(table.index)), [str(r) for r in table.index])
    values = table.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if value < middle else "black")
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    fig.colorbar(image, ax=ax, label=label(metric) + (" (%)" if scale == 100 else ""))
    fig.tight_layout()
    return fig


def lr_sweep(stats: pd.DataFrame, metric: str, hue: str, colours: Colours,
             scale: float = 100.0) -> plt.Figure:
    """Mean final ``metric`` against the learning rate (log axis), one line per ``hue``
    with its bootstrap-CI band."""
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for name, group in stats.sort_values("lr").groupby(hue, sort=False):
        colour = colours.get(name)
        ax.plot(group["lr"], group["mean"] * scale, marker="o", ms=3, label=name,
                color=colour)
        ax.fill_between(group["lr"], group["ci_low"] * scale, group["ci_high"] * scale,
                        color=colour, alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(label(metric) + (" (%)" if scale == 100 else ""))
    ax.grid(alpha=0.3)
    _legend(fig, ax, hue)
    fig.tight_layout()
    return fig


def tuning_trials(points: pd.DataFrame, x: str, metric: str, colours: Colours,
                  selected: dict[str, float], scale: float = 100.0) -> plt.Figure:
    """Every tuning trial as a point (``x`` against the validation ``metric``), the mean
    over tuning seeds as a line per group, and each group's selected value circled."""
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for name, group in points.groupby("group", sort=False):
        colour = colours.get(str(name).rsplit("=", 1)[-1])
        ax.scatter(group[x], group["value"] * scale, s=12, alpha=0.6, color=colour)
        means = group.groupby(x)["value"].mean().sort_index()
        ax.plot(means.index, means.to_numpy() * scale, color=colour, label=name, lw=1.2)
        if name in selected and selected[name] in means.index:
            ax.scatter([selected[name]], [means[selected[name]] * scale], s=90,
                       facecolors="none", edgecolors=colour, linewidths=1.5)
    if (points[x] > 0).all():
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(label(metric) + (" (%)" if scale == 100 else ""))
    ax.grid(alpha=0.3)
    _legend(fig, ax, "group")
    fig.tight_layout()
    return fig


def cost_bars(cost: pd.DataFrame, value: str, hue: str, colours: Colours) -> plt.Figure:
    """A per-``hue`` bar chart of a cost column (seconds per epoch, images/s, memory)."""
    per_hue = cost.groupby(hue, sort=False)[value].mean()
    fig, ax = plt.subplots(figsize=(max(4.5, 0.6 * len(per_hue) + 2), 3.2))
    ax.bar(range(len(per_hue)), per_hue.to_numpy(dtype=float),
           color=[colours.get(name, "tab:blue") for name in per_hue.index])
    ax.set_xticks(range(len(per_hue)), [str(n) for n in per_hue.index], rotation=20, ha="right")
    ax.set_ylabel(value.replace("_", " "))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def layer_curves(layers: pd.DataFrame, metric: str, hue: str, colours: Colours,
                 max_layers: int = 8, styles: dict[str, str] | None = None,
                 legend_title: str | None = None) -> plt.Figure:
    """Per-layer ``metric`` (weight mean/std, gradient norm, dead units) over epochs, mean
    over seeds, one panel per layer (the first ``max_layers`` in network order), one line
    per ``hue`` (line style from ``styles``)."""
    data = layers[layers["metric"] == metric]
    names = list(dict.fromkeys(data["layer"]))[:max_layers]
    fig, axes = _panels(len(names), width=3.0, height=2.8, sharey=False)
    for ax, name in zip(axes, names, strict=True):
        per_epoch = (data[data["layer"] == name].groupby([hue, "epoch"], sort=False)["value"]
                     .mean().reset_index())
        for value, group in per_epoch.groupby(hue, sort=False):
            ax.plot(group["epoch"], group["value"], color=colours.get(value), label=value,
                    lw=1.4, ls=(styles or {}).get(value, "-"))
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if metric == "grad_norm":
            ax.set_yscale("log")
    axes[0].set_ylabel(label(metric))
    _legend(fig, axes[0], legend_title or hue)
    fig.tight_layout()
    return fig


#: Panels per figure of learnable parameters: a combination of activations has up to 18
#: parameters, and a figure 18 panels wide is read by no one (and costs seconds to draw);
#: the report's table lists every parameter.
MAX_PARAMETER_PANELS = 8


def parameter_trajectories(params: pd.DataFrame, act: str, max_sites: int = 8,
                           max_panels: int = MAX_PARAMETER_PANELS) -> plt.Figure:
    """Each learnable parameter of activation ``act`` per epoch (0 = at initialization),
    one panel per parameter (the first ``max_panels``), one line per site (the first
    ``max_sites`` in network order; mean over seeds)."""
    data = params[params["act"] == act]
    names = list(dict.fromkeys(data["name"]))[:max_panels]
    fig, axes = _panels(len(names), width=3.6, height=3.0, sharey=False)
    sites = list(dict.fromkeys(data["site"]))[:max_sites]
    palette = plt.get_cmap("viridis")
    for ax, name in zip(axes, names, strict=True):
        for i, site in enumerate(sites):
            series = (data[(data["name"] == name) & (data["site"] == site)]
                      .groupby("epoch")["value"].mean())
            ax.plot(series.index, series.to_numpy(), color=palette(i / max(1, len(sites) - 1)),
                    label=site, lw=1.3)
        ax.set_title(f"{act}: {name}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    _legend(fig, axes[0], "site")
    fig.tight_layout()
    return fig


MAX_SITE_LABELS = 24


def parameter_finals(params: pd.DataFrame, act: str,
                     max_panels: int = MAX_PARAMETER_PANELS) -> plt.Figure:
    """Final value of each learnable parameter of ``act`` (the first ``max_panels``) per
    site (layer order), mean over seeds with the min-max range as whiskers."""
    data = params[params["act"] == act]
    last = data[data["epoch"] == data.groupby("run_id")["epoch"].transform("max")]
    names = list(dict.fromkeys(last["name"]))[:max_panels]
    fig, axes = _panels(len(names), width=3.8, height=3.0, sharey=False)
    for ax, name in zip(axes, names, strict=True):
        per_site = last[last["name"] == name].groupby("site", sort=False)["value"]
        mean, low, high = per_site.mean(), per_site.min(), per_site.max()
        x = np.arange(len(mean))
        ax.errorbar(x, mean.to_numpy(), yerr=[mean - low, high - mean], fmt="o", ms=4,
                    capsize=2, color="tab:blue")
        # At most ~24 labelled sites (every k-th, network order): a DenseNet has over 100,
        # whose labels would overlap and cost more to lay out than the rest of the figure.
        every = -(-len(x) // MAX_SITE_LABELS)
        ax.set_xticks(x[::every], [str(s) for s in mean.index[::every]], rotation=60,
                      ha="right", fontsize=7)
        ax.set_title(f"{act}: final {name}", fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence[str] | None = None,
                     title: str = "") -> plt.Figure:
    """A confusion matrix (rows: true class, columns: predicted), row-normalized colours
    and raw counts."""
    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = len(counts)
    classes = list(classes) if classes else [str(i) for i in range(size)]
    fig, ax = plt.subplots(figsize=(0.5 * size + 2.2, 0.5 * size + 1.6))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if size <= 20:
        for (i, j), value in np.ndenumerate(counts):
            ax.text(j, i, f"{int(value)}", ha="center", va="center", fontsize=6,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(size), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(size), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    fig.tight_layout()
    return fig


def critical_difference(average_ranks: pd.Series, cd: float, title: str = "") -> plt.Figure:
    """Demšar's critical-difference diagram: methods on an axis of average rank (1 =
    best, left), with the CD as a bar; methods whose ranks differ by less than the CD
    are joined by a thick line (not significantly different)."""
    ranks = average_ranks.sort_values()
    k = len(ranks)
    fig, ax = plt.subplots(figsize=(7.0, 1.0 + 0.3 * ((k + 1) // 2)))
    half = (k + 1) // 2
    ax.set_xlim(0.8, k + 0.2)
    ax.set_ylim(-0.5 * (half + 1), 1.4)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black", lw=1)
    for tick in range(1, k + 1):
        ax.vlines(tick, 0, 0.15, color="black", lw=1)
        ax.text(tick, 0.3, str(tick), ha="center", fontsize=8)
    ax.hlines(1.05, 1, 1 + cd, color="black", lw=2)
    ax.text(1 + cd / 2, 1.2, f"CD = {cd:.2f}", ha="center", fontsize=8)
    for i, (name, rank) in enumerate(ranks.items()):
        left = i < half
        y = -0.5 * (i + 1 if left else k - i)
        x_text = 0.85 if left else k + 0.15
        ax.plot([rank, rank, x_text], [0, y, y], color="0.3", lw=0.8)
        ax.text(x_text, y, f"{name} ({rank:.2f})", ha="right" if left else "left",
                va="center", fontsize=8)
    # Cliques: maximal runs of consecutive methods spanning less than the CD.
    values = ranks.to_numpy()
    cliques = []
    for start in range(k):
        end = start
        while end + 1 < k and values[end + 1] - values[start] < cd:
            end += 1
        if end > start and not any(s <= start and end <= e for s, e in cliques):
            cliques.append((start, end))
    for depth, (start, end) in enumerate(cliques):
        y = -0.12 - 0.12 * depth
        ax.hlines(y, values[start] - 0.03, values[end] + 0.03, color="black", lw=3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def lr_find_figure(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float],
                   suggested_range: tuple[float, float], title: str = "") -> plt.Figure:
    """Loss against learning rate (log axis), raw and smoothed, with the suggested range."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(lrs, losses, color="0.75", linewidth=0.8, label="loss per step")
    ax.plot(lrs, smoothed, color="tab:blue", linewidth=1.8, label="smoothed")
    ax.axvspan(*suggested_range, color="tab:green", alpha=0.15, label="suggested range")
    ax.set_xscale("log")
    finite = [v for v in smoothed if v == v and abs(v) != float("inf")]
    if finite:  # keep the blow-up at the end from flattening the interesting part
        ax.set_ylim(min(finite) * 0.9, min(max(finite), 4 * min(finite)) * 1.1)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig
