"""Figures (matplotlib, Agg backend): curves with bands over seeds, consistent AF colours."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from actlab.analysis import curve_band

METRIC_LABELS = {
    "train_loss": "training loss", "val_loss": "validation loss",
    "train_acc": "training accuracy", "val_acc": "validation accuracy", "lr": "learning rate",
}


def colour_map(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """One fixed colour per name (in the given order), the same in every figure."""
    palette = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: palette(i % palette.N) for i, name in enumerate(names)}


def curves_figure(epochs: pd.DataFrame, metric: str, hue: str, panel: str,
                  colours: dict[str, tuple[float, ...]]) -> plt.Figure:
    """``metric`` per epoch, one line per ``hue`` value with a ±1 std band over seeds,
    one panel per ``panel`` value."""
    band = curve_band(epochs, metric, [panel, hue])
    panels = list(dict.fromkeys(epochs[panel]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), sharey=True,
                             squeeze=False)
    for ax, value in zip(axes[0], panels, strict=True):
        for name, group in band[band[panel] == value].groupby(hue, sort=False):
            colour = colours.get(name)
            std = group["std"].fillna(0.0)
            ax.plot(group["epoch"], group["mean"], label=name, color=colour, lw=1.6)
            ax.fill_between(group["epoch"], group["mean"] - std, group["mean"] + std,
                            color=colour, alpha=0.18, lw=0)
        ax.set_title(f"{panel} = {value}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if metric.endswith("loss"):
            ax.set_yscale("log")
    axes[0][0].set_ylabel(METRIC_LABELS.get(metric, metric))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
               title=hue)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


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
