"""Reports: figures, tables and the study report (HTML and Markdown)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actlab.report.build import Report


def write_report(store: Any, studies: list[str], out: str | Path, metric: str = "test_acc",
                 baseline: dict[str, Any] | None = None, self_contained: bool = False,
                 test: str = "wilcoxon", theory: bool = True, svg: bool = True,
                 rope: float | None = None, effect: float | None = None) -> dict[str, Path]:
    """Write the report of ``studies`` (one or several) into ``out``; returns the paths
    of ``index.html`` and ``report.md``; ``theory=False`` leaves out the theory
    section, ``svg=False`` the SVG copies of the figures; ``rope`` and ``effect`` (metric
    points) set the verdicts' region of practical equivalence and the difference the
    power table asks seeds for."""
    return Report(store, studies, metric, baseline, test=test, theory=theory,
                  svg=svg, rope=rope, effect=effect).write(out, self_contained)


__all__ = ["Report", "write_report"]
