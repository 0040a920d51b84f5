"""The report's "Seeds" section for studies with adaptive seeds (study/stopping.py): the
stopping rule, its known bias, how many runs it took against fixed seeds, and per cell
how many seeds it got and why it stopped."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from actlab.report.document import Section
from actlab.report.sections import ReportWriter, register_section
from actlab.study.plan import Study

if TYPE_CHECKING:
    from actlab.report.build import Report

#: What each rule is known to do to the estimates and the tests (docs/statistics.md
#: has the simulation behind these sentences).
BIAS = {
    "precision": (
        "The rule looks at the width of the interval, never at its position, so it does "
        "not steer the estimate the way stopping on significance does: for normally "
        "distributed differences the spread is independent of the mean, and in simulation "
        "(docs/statistics.md) the rate of false 'better' results stays at the nominal "
        "level and the estimates are unbiased within the Monte-Carlo error. Cells whose "
        "differences are noisy get more seeds; a cell that reached the maximum is reported "
        "as not precise."),
    "decided": (
        "This is optional stopping on the posterior: a cell stops as soon as a verdict "
        "reaches 95%, so cells that stopped early are those whose first seeds happened to "
        "agree, and their estimated differences lean away from the region of practical "
        "equivalence. In simulation (docs/statistics.md) the false 'better' rate stays "
        "within the nominal level, but the estimates of stopped cells are slightly biased; "
        "read the differences of early-stopped cells with that in mind."),
}


@register_section("seeds", order=25)
def adaptive_seeds(r: Report, w: ReportWriter) -> list[Section]:
    """Per study with adaptive seeds: the rule, its bias, the runs, the cells."""
    sections = []
    for name, states in r.adaptive.items():
        study = Study.model_validate(r.specs[name])
        adaptive = study.adaptive
        assert adaptive is not None
        section = Section(f"Seeds: {name}")
        cells = [state for state in states if state.progress is not None]
        runs = sum(state.seeds for state in states)
        fixed = len(states) * adaptive.max
        still_open = [state.label for state in cells if state.progress.status != "stopped"]
        section.paragraphs.append(
            f"Seeds were spent where the answer was open: every cell ran seeds 0-"
            f"{adaptive.min - 1}; then a cell got {adaptive.batch} more seed"
            f"{'s' if adaptive.batch > 1 else ''} at a time (its baseline with it) "
            f"{adaptive.until.describe()} on {adaptive.metric}, up to {adaptive.max} seeds. "
            f"This took {runs} runs, against {fixed} with {adaptive.max} seeds for every "
            f"cell ({runs / fixed:.0%}). " + (
                f"{len(still_open)} cell(s) are still open (runs pending): "
                f"{', '.join(still_open)}." if still_open else "Every cell has stopped."))
        section.paragraphs.append(BIAS[adaptive.until.kind])
        section.add(w.table(f"seeds-{name}", f"Seeds per cell ({name})",
                            f"Each cell's seeds and why it stopped ({adaptive.until}); "
                            "difference and 95% CI half-width against its baseline, in "
                            "points (+ = better), at its last check.",
                            frame=_cells_frame(states, adaptive.until.kind)))
        sections.append(section)
    return sections


def _cells_frame(states: list, kind: str) -> pd.DataFrame:
    rows = []
    for state in states:
        progress = state.progress
        checked = progress is not None and progress.pairs >= 2
        rows.append({
            "cell": state.label, "baseline": state.baseline, "seeds": state.seeds,
            "state": "baseline" if progress is None else
            "stopped" if progress.status == "stopped" else "open",
            "difference": progress.difference if checked else None,
            "ci_half_width": progress.half_width if checked else None,
            "verdict": progress.verdict if checked else "",
            "why": "runs the most seeds its cells need" if progress is None else
            progress.reason,
        })
    frame = pd.DataFrame(rows)
    return frame if kind == "decided" else frame.drop(columns="verdict")
