"""Fair comparisons: every group tuned within the same budget, selected on validation.

A study's ``tune:`` block (docs/study-files.md, "Tuning") gives a search space over run
fields, the axes whose values get their own tuning (``per``; model and dataset always
do), a budget of ``trials`` per group, the ``method`` that picks them, the validation
metric that ``select``\\ s, and tuning ``seeds`` distinct from the study's final seeds.
This follows the tuning ruleset of AlgoPerf (Dahl et al. 2023, "Benchmarking neural
network training algorithms"): the same space and number of trials for every method,
the trial chosen on validation data, and the score measured with fresh seeds.

The plan has two phases. The tuning trials of every group come first; once all of a
group's trials are finished, its selection is a pure function of their stored results
(:func:`select`: the best mean validation metric over tuning seeds and the group's
cells; ties go to the smaller value of the first space axis), and its final runs (the
group's cells at the selected values, on the final seeds) join the plan. Trials are
ordinary stored runs whose role is ``tune``; finals have the role ``final``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Validation metrics a selection may use (a test metric would leak the test set).
SELECTABLE = ("val_acc", "val_loss", "best_val_acc")
LOWER_IS_BETTER = ("val_loss",)
#: Where the tuning seeds start when given as a count (far from any final seed).
TUNING_SEED_BASE = 10_000
_DISTRIBUTION = re.compile(r"^\s*(loguniform|uniform|intuniform)\s*\(\s*([^,]+),\s*([^)]+)\)\s*$")


class Distribution(BaseModel):
    """A continuous (or integer) range a random search draws from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["loguniform", "uniform", "intuniform"]
    low: float
    high: float

    @classmethod
    def parse(cls, text: str, axis: str) -> Distribution:
        match = _DISTRIBUTION.match(text)
        if not match:
            raise ValueError(f"tune.space.{axis}: {text!r} is neither a list of values nor "
                             "loguniform(a, b), uniform(a, b) or intuniform(a, b)")
        kind, low, high = match.group(1), match.group(2), match.group(3)
        try:
            bounds = float(low), float(high)
        except ValueError:
            raise ValueError(f"tune.space.{axis}: the bounds of {text!r} must be numbers"
                             ) from None
        if not bounds[0] < bounds[1]:
            raise ValueError(f"tune.space.{axis}: {text!r} needs low < high")
        if kind == "loguniform" and bounds[0] <= 0:
            raise ValueError(f"tune.space.{axis}: {text!r} needs a positive low bound "
                             "(it is uniform in log space)")
        return cls(kind=kind, low=bounds[0], high=bounds[1])

    def draw(self, rng: np.random.Generator) -> float | int:
        if self.kind == "loguniform":
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        if self.kind == "intuniform":
            return int(rng.integers(int(self.low), int(self.high) + 1))
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.kind}({self.low:g}, {self.high:g})"


class TuneSpec(BaseModel):
    """A study's ``tune:`` block, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    space: dict[str, list[Any] | Distribution]
    per: list[str] | None = None
    trials: int | None = Field(None, ge=1)
    method: Literal["grid", "random", "halving"] = "grid"
    #: Successive halving: the fraction 1/eta of a rung's trials that go on to the next.
    eta: int = Field(2, ge=2)
    select: str = "val_acc"
    seeds: int | list[int] = 2
    #: The seed of the random draws, so that a plan is reproducible.
    draw_seed: int = 0
    #: Also run every cell at the study's own values (the shared configuration) on the
    #: final seeds, to show whether tuning changes the ranking.
    shared: bool = False

    @field_validator("space", mode="before")
    @classmethod
    def _space(cls, value: Any) -> Any:
        if not isinstance(value, dict) or not value:
            raise ValueError("tune.space must name at least one run field with its values, "
                             "e.g. {lr: loguniform(1e-4, 1e-1)}")
        space: dict[str, Any] = {}
        for axis, values in value.items():
            if isinstance(values, str):
                space[axis] = Distribution.parse(values, axis)
            elif (isinstance(values, list) and values) or isinstance(values, Distribution | dict):
                space[axis] = values
            else:
                raise ValueError(f"tune.space.{axis} must be a non-empty list of values or a "
                                 "distribution such as loguniform(1e-4, 1e-1)")
        return space

    @field_validator("select")
    @classmethod
    def _validation_metric(cls, value: str) -> str:
        if value.startswith("test_"):
            raise ValueError(f"tune.select is {value}, a test metric: selecting on the test "
                             "set makes the final comparison optimistic; use a validation "
                             f"metric ({', '.join(SELECTABLE)})")
        if value not in SELECTABLE:
            raise ValueError(f"tune.select: unknown metric {value!r}; use one of "
                             f"{', '.join(SELECTABLE)}")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int) and value < 1:
            raise ValueError("tune.seeds must be a positive count or a list of seeds")
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("tune.seeds must be a non-empty list of distinct seeds")
        return value

    @model_validator(mode="after")
    def _budget(self) -> TuneSpec:
        lists = all(isinstance(v, list) for v in self.space.values())
        if self.method == "grid" and not lists:
            raise ValueError("tune.method grid needs a list of values for every space axis; "
                             "use method: random with distributions")
        if self.method == "grid" and self.trials is not None and self.trials > self.grid_size:
            raise ValueError(f"tune.trials is {self.trials} but the grid has only "
                             f"{self.grid_size} points; give trials <= {self.grid_size} or "
                             "leave it out (every point)")
        if self.method == "random" and self.trials is None:
            raise ValueError("tune.method random needs tune.trials (the budget per group)")
        if self.method == "halving" and self.trials is None and not lists:
            raise ValueError("tune.method halving over a range needs tune.trials")
        if self.method == "halving" and self.trials is not None and lists \
                and self.trials > self.grid_size:
            raise ValueError(f"tune.trials is {self.trials} but the grid has only "
                             f"{self.grid_size} points")
        return self

    def rungs(self, epochs: int) -> list[tuple[int, int]]:
        """Successive halving's rungs (Jamieson & Talwalkar 2016; Li et al. 2018) for
        trials of ``epochs`` epochs: ``(trials kept, epochs)`` per rung, from all trials
        at the fewest epochs to one or a few at ``epochs``; each rung keeps the best
        1/eta of the one before. Other methods have one rung."""
        count = len(self.configurations())
        if self.method != "halving" or count < 2:
            return [(count, epochs)]
        top = max(0, math.floor(math.log(count, self.eta) + 1e-9))
        rungs = []
        for k in range(top + 1):
            rung_epochs = max(1, round(epochs / self.eta ** (top - k)))
            rungs.append((max(1, count // self.eta ** k), rung_epochs))
        merged: list[tuple[int, int]] = []
        for kept, rung_epochs in rungs:  # rungs of equal epochs (few epochs): one rung
            if merged and merged[-1][1] == rung_epochs:
                merged[-1] = (merged[-1][0], rung_epochs)
            else:
                merged.append((kept, rung_epochs))
        return merged

    @property
    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.space.values() if isinstance(v, list))

    @property
    def seed_list(self) -> list[int]:
        if isinstance(self.seeds, int):
            return [TUNING_SEED_BASE + i for i in range(self.seeds)]
        return list(self.seeds)

    def configurations(self) -> list[dict[str, Any]]:
        """The trials every group runs: the whole grid (or ``trials`` points of it drawn
        without replacement), or ``trials`` random draws; from ``draw_seed``, so the
        plan is the same every time."""
        rng = np.random.default_rng(self.draw_seed)
        axes = list(self.space)
        lists = all(isinstance(v, list) for v in self.space.values())
        if self.method == "grid" or (self.method == "halving" and lists):
            points = [dict(zip(axes, values, strict=True)) for values in
                      itertools.product(*(self.space[a] for a in axes))]  # type: ignore[misc]
            if self.trials is not None and self.trials < len(points):
                chosen = sorted(rng.choice(len(points), self.trials, replace=False))
                points = [points[i] for i in chosen]
            return points
        draws = []
        for _ in range(self.trials or 0):
            draws.append({axis: (values.draw(rng) if isinstance(values, Distribution)
                                 else values[int(rng.integers(len(values)))])
                          for axis, values in self.space.items()})
        return draws

    def on_edge(self, configuration: dict[str, Any]) -> list[str]:
        """The axes whose selected value is the smallest or largest the space allows."""
        edges = []
        for axis, values in self.space.items():
            value = configuration[axis]
            if isinstance(values, list):
                numeric = [v for v in values if isinstance(v, int | float)]
                if len(numeric) == len(values) > 1 and value in (min(numeric), max(numeric)):
                    edges.append(axis)
            elif isinstance(value, int | float):
                span = values.high - values.low
                if min(value - values.low, values.high - value) < 0.05 * span:
                    edges.append(axis)
        return edges


def select(tune: TuneSpec, results: Sequence[tuple[dict[str, Any], float]]
           ) -> tuple[dict[str, Any], float]:
    """The best configuration of :func:`rank`, and its mean."""
    return rank(tune, results)[0]


def rank(tune: TuneSpec, results: Sequence[tuple[dict[str, Any], float]]
         ) -> list[tuple[dict[str, Any], float]]:
    """The configurations with a finite mean of ``tune.select`` over their results
    (``(configuration, metric)`` per finished trial run; NaN for a diverged one, which
    rules its configuration out), best first, with that mean. Ties go to the smaller
    value of the first space axis, then the next (a smaller lr, a smaller weight decay:
    the cheaper, safer choice)."""
    sign = -1.0 if tune.select in LOWER_IS_BETTER else 1.0
    by_config: dict[str, tuple[dict[str, Any], list[float]]] = {}
    for configuration, value in results:
        key = repr(sorted(configuration.items()))
        by_config.setdefault(key, (configuration, []))[1].append(value)
    scored = []
    for configuration, values in by_config.values():
        finite = [v for v in values if math.isfinite(v)]
        mean = sum(finite) / len(finite) if len(finite) == len(values) else math.nan
        scored.append((configuration, mean))
    candidates = [(c, m) for c, m in scored if math.isfinite(m)]
    if not candidates:
        raise ValueError("every trial of the group diverged or failed: widen or move the "
                         "search space (a smaller lr)")

    def order(item: tuple[dict[str, Any], float]) -> tuple:
        configuration, mean = item
        return (-sign * mean, *(_sortable(configuration[a]) for a in tune.space))

    return sorted(candidates, key=order)


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def configuration_text(configuration: dict[str, Any]) -> str:
    """``lr=0.003, weight_decay=0``: a configuration as reports and the CLI show it (each
    field by the last part of its path)."""
    return ", ".join(f"{axis.rsplit('.', 1)[-1]}={value:g}" if isinstance(value, float)
                     else f"{axis.rsplit('.', 1)[-1]}={value}"
                     for axis, value in configuration.items())
