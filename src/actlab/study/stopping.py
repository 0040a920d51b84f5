"""Adaptive seeds: more seeds only for the cells whose comparison is still open.

A study's ``seeds: {min: 3, max: 15, until: precision(0.3)}`` (docs/study-files.md,
"Adaptive seeds") runs every cell on seeds 0..min-1; then, cell by cell, the stopping
rule looks at the seed-paired differences to the cell's baseline (the cell with the
baseline's values, e.g. ``act: relu``) and, while the answer is open and fewer than
``max`` seeds have run, the cell gets the next ``batch`` seeds (and its baseline with
it). Seeds stay the next integers, so a study stopped and extended later (a higher
``max``) reuses every run.

Two rules, in the metric's points (percentage points for accuracies):

* ``precision(h)``, the default kind: stop once the 95% t confidence interval of the
  mean difference is at most ±h. The rule looks at the interval's width, never at its
  position, so it does not steer the estimate the way stopping on significance does
  (Kruschke 2015, "Doing Bayesian Data Analysis", 2nd ed., section 13.3: precision as
  the goal of data collection).
* ``decided(rope)``: stop once the Bayesian verdict (:mod:`actlab.paired`, Benavoli
  et al. 2017) with that ROPE is better, equivalent or worse at 95%. This is optional
  stopping on the posterior; its false-"better" rate is measured in docs/statistics.md.

The decision for a cell at n seeds uses exactly seeds 0..n-1 of the cell and of its
baseline, and is taken only when all of them are finished, so the plan a study ends with
depends on the results alone, never on which process finished first: every runner, the
status command and the report compute the same plan from the store
(:mod:`actlab.study.phases`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from actlab.spec import StrictModel

_RULE = re.compile(r"^\s*(precision|decided)\s*\(\s*(?:rope\s*=\s*|h\s*=\s*)?"
                   r"([0-9.eE+-]+)\s*\)\s*$")
#: Metrics whose points are percentage points (a value of 0.93 reads 93.0).
PERCENT_METRICS = ("acc", "top3", "f1", "precision", "recall")
LOWER_IS_BETTER = ("loss", "seconds", "epochs_to", "auc")


def metric_scale(metric: str) -> float:
    """How a metric's stored value maps to its points: 100 for accuracies, else 1."""
    return 100.0 if metric.endswith(PERCENT_METRICS) else 1.0


def higher_is_better(metric: str) -> bool:
    return not any(word in metric for word in LOWER_IS_BETTER)


class StoppingRule(StrictModel):
    """``precision(h)`` or ``decided(rope)``, with its threshold in metric points."""

    kind: Literal["precision", "decided"]
    value: float = Field(gt=0)

    @classmethod
    def parse(cls, text: str) -> StoppingRule:
        match = _RULE.match(text)
        if not match:
            raise ValueError(f"seeds.until: {text!r} is not a stopping rule; use "
                             "precision(h) (stop at a 95% CI half-width of h points) or "
                             "decided(rope=r) (stop at a 95% Bayesian verdict with a ROPE of "
                             "r points)")
        try:
            value = float(match.group(2))
        except ValueError:
            raise ValueError(f"seeds.until: {text!r}: the threshold must be a number") from None
        if not value > 0:
            raise ValueError(f"seeds.until: {text!r}: the threshold must be positive")
        return cls(kind=match.group(1), value=value)

    def __str__(self) -> str:
        return f"precision({self.value:g})" if self.kind == "precision" \
            else f"decided(rope={self.value:g})"

    def describe(self) -> str:
        """The rule in a sentence, for the report and the status table."""
        if self.kind == "precision":
            return (f"until the 95% confidence interval of the difference to the baseline "
                    f"is at most ±{self.value:g} points")
        return (f"until the Bayesian verdict against the baseline (ROPE ±{self.value:g} "
                "points) is better, equivalent or worse at 95%")


class AdaptiveSeeds(StrictModel):
    """A study's ``seeds:`` block when seeds are spent where the answer is open."""

    #: The defaults follow the simulation in docs/statistics.md: from 3 seeds on, both
    #: rules' t intervals claimed "better" more often than the nominal 2.5%; at 5 the
    #: decided rule's claims all stay within it.
    min: int = Field(5, ge=2)
    max: int
    until: StoppingRule = Field(default_factory=lambda: StoppingRule(kind="decided",
                                                                     value=0.5))
    #: Seeds an open cell gets at a time (its baseline with it).
    batch: int = Field(1, ge=1)
    #: The cell each cell is compared with: axis values, the others as in the cell
    #: (default: the first value of every compared axis).
    baseline: dict[str, Any] | None = None
    #: The metric the rule reads (a test metric: the comparison the report makes).
    metric: str = "test_acc"

    @field_validator("until", mode="before")
    @classmethod
    def _rule(cls, value: Any) -> Any:
        return StoppingRule.parse(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _range(self) -> AdaptiveSeeds:
        if self.max <= self.min:
            raise ValueError(f"seeds.max ({self.max}) must be above seeds.min ({self.min}); "
                             "for a fixed number of seeds write `seeds: N`")
        return self

    @property
    def scale(self) -> float:
        return metric_scale(self.metric)

    @property
    def sign(self) -> float:
        return 1.0 if higher_is_better(self.metric) else -1.0

    def text(self) -> str:
        return (f"min {self.min}, max {self.max}, until {self.until}"
                + (f", batch {self.batch}" if self.batch > 1 else ""))


CellStatus = Literal["waiting", "open", "stopped"]  # open: only inside check()


@dataclass(frozen=True)
class CellProgress:
    """Where the stopping rule stands for one cell: its planned seeds, ``stopped``
    (with why), or waiting for runs to finish (``waiting``); the latest check's
    half-width and verdict, in points."""

    seeds: int
    status: CellStatus
    reason: str
    pairs: int = 0
    difference: float = math.nan  # mean paired difference, points, + = better
    half_width: float = math.inf  # 95% CI half-width, points
    verdict: str = "undecided"
    uncertainty: float = math.inf  # how far from closing: the larger, the sooner it runs


#: (cell value, baseline value) of one seed once both runs finished (NaN where a run
#: diverged or failed); None while either is pending or running.
Pair = tuple[float, float] | None


def follow_cell(seeds: AdaptiveSeeds, pair_of: Callable[[int], Pair]) -> CellProgress:
    """Apply the stopping rule to one cell from ``min`` seeds on: the planned seeds
    grow by ``batch`` each time all planned pairs are finished and the rule finds the
    answer still open, until it is closed or ``max`` is reached."""
    n, last = seeds.min, None
    while True:
        pairs = [pair_of(seed) for seed in range(n)]
        waiting = sum(pair is None for pair in pairs)
        if waiting:
            reason = f"waiting for {waiting} of {n} seed pairs"
            if last is None:
                return CellProgress(n, "waiting", reason)
            return _with(last, "waiting", f"{_open_text(seeds, last)} at {last.seeds} "
                         f"seeds; {reason}", seeds=n)
        differences = [seeds.sign * (cell - base) * seeds.scale for cell, base in pairs
                       if pair_is_complete(cell, base)]
        last = check(seeds, differences, n)
        if last.status == "stopped":
            return last
        if n >= seeds.max:
            return _with(last, "stopped", f"max seeds ({seeds.max}) reached, still "
                         f"{_open_text(seeds, last)}")
        n = min(n + seeds.batch, seeds.max)


def pair_is_complete(cell: float, base: float) -> bool:
    return math.isfinite(cell) and math.isfinite(base)


def check(seeds: AdaptiveSeeds, differences: Sequence[float], n: int) -> CellProgress:
    """The rule on ``differences`` (points, + = better) of a cell planned for ``n``
    seeds: stopped with the reason, or open."""
    from actlab.paired import ci_half_width, verdict

    if len(differences) < 2:
        return CellProgress(n, "stopped", f"{len(differences)} of {n} seed pairs completed "
                            "(the others diverged or failed): nothing to compare",
                            pairs=len(differences))
    rule = seeds.until
    mean = sum(differences) / len(differences)
    half = ci_half_width(differences)
    found = verdict(differences, rope=rule.value) if rule.kind == "decided" else None
    progress = CellProgress(n, "open", "", len(differences), mean, half,
                            found.verdict if found else "undecided",
                            half / rule.value if found is None
                            else 1.0 - max(found.p_worse, found.p_equivalent, found.p_better))
    if rule.kind == "precision" and half <= rule.value:
        return _with(progress, "stopped", f"precise: ±{half:.2f} <= ±{rule.value:g} points")
    if found is not None and found.verdict != "undecided":
        probability = {"better": found.p_better, "worse": found.p_worse,
                       "equivalent": found.p_equivalent}[found.verdict]
        return _with(progress, "stopped", f"decided: {found.verdict} "
                     f"(P = {probability:.3f})")
    return _with(progress, "open", _open_text(seeds, progress))


def _open_text(seeds: AdaptiveSeeds, progress: CellProgress) -> str:
    if seeds.until.kind == "precision":
        return f"±{progress.half_width:.2f} > ±{seeds.until.value:g} points"
    return "undecided at 95%"


def _with(progress: CellProgress, status: CellStatus, reason: str,
          seeds: int | None = None) -> CellProgress:
    return CellProgress(progress.seeds if seeds is None else seeds, status, reason,
                        progress.pairs, progress.difference, progress.half_width,
                        progress.verdict, progress.uncertainty)
