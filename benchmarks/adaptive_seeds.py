"""Adaptive seeds measured by simulation (issue 24): how often do the stopping rules
call a cell "better" than its baseline when every cell is equal, and how many runs do
they spend against a fixed number of seeds that reaches the same precision?

A fake trainer stands in for training: each simulated study has a baseline and
``--cells`` cells; the metric of (cell, seed) is the cell's true mean, plus a seed effect
shared by every cell on that seed (what pairing by seed removes), plus the run's own
noise, drawn normal or heavy-tailed (Student t with 3 degrees of freedom, scaled to the
same std). The rules are actlab's own: every cell goes through
:func:`actlab.study.stopping.follow_cell` exactly as in a study, seed by seed, and the
claims at the end are those the report makes (:mod:`actlab.paired`).

Two scenarios:

* ``null``: all cells equal. A false "better" is a cell whose 95% t interval of the
  difference lies above 0 (nominal 2.5%: one side of a two-sided 5% test), whose
  Wilcoxon signed-rank p-value is below 0.05 with a positive difference (at most 2.5%:
  the test is discrete), or whose Bayesian verdict with the rule's ROPE is better (at
  most 5%: the rope-0 verdict is a one-sided 5% test). The Monte-Carlo error is the
  standard error over studies (the cells of a study share their baseline, so they are
  not independent).
* ``mixed``: ten cells like an activation study (differences from +1 to -10 points,
  paired noise from 0.3 to 2 points). Runs spent by each rule against the smallest fixed
  number of seeds with which at least as many cells reach the rule's target.

    python benchmarks/adaptive_seeds.py [--studies 1000] [--no-append]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.stats import wilcoxon

from actlab.paired import ci_half_width, verdict
from actlab.study.stopping import AdaptiveSeeds, follow_cell
from record import report

POINTS = 100.0  # accuracies: values are fractions, rules read points
MIXED_DIFFERENCES = [1.0, 0.5, 0.3, 0.1, 0.0, 0.0, -0.3, -1.0, -3.0, -10.0]  # points
MIXED_NOISE = [0.5, 0.3, 1.0, 0.7, 0.5, 2.0, 0.7, 1.0, 1.5, 2.0]  # points, per run


class FakeTrainer:
    """The metric of (cell, seed) in one simulated study; cell 0 is the baseline."""

    def __init__(self, rng: np.random.Generator, differences: list[float], noise: list[float],
                 seeds: int, tails: str, shared: float = 0.5) -> None:
        cells = len(differences) + 1
        draw = (rng.standard_normal if tails == "normal"
                else lambda size: rng.standard_t(3, size) / math.sqrt(3.0))  # unit variance
        seed_effect = shared * draw((1, seeds))
        own = np.array([noise[0], *noise])[:, None] / math.sqrt(2)  # pairs: sqrt(2) x own
        self.values = (90.0 + np.array([0.0, *differences])[:, None] + seed_effect
                       + own * draw((cells, seeds))) / POINTS

    def pair(self, cell: int, seed: int) -> tuple[float, float]:
        return float(self.values[cell, seed]), float(self.values[0, seed])


def run_rule(seeds: AdaptiveSeeds | int, trainer: FakeTrainer, cells: int
             ) -> list[tuple[int, list[float]]]:
    """Per cell: the seeds it ran and its paired differences in points (+ = better)."""
    out = []
    for cell in range(1, cells + 1):
        if isinstance(seeds, int):
            n = seeds
        else:
            n = follow_cell(seeds, lambda seed, c=cell: trainer.pair(c, seed)).seeds
        differences = [(trainer.pair(cell, s)[0] - trainer.pair(cell, s)[1]) * POINTS
                       for s in range(n)]
        out.append((n, differences))
    return out


def runs_spent(per_cell: list[tuple[int, list[float]]]) -> int:
    """Runs of the cells plus the baseline's (it runs the most seeds any cell needs)."""
    return sum(n for n, _ in per_cell) + max(n for n, _ in per_cell)


def null_scenario(rule: AdaptiveSeeds | int, studies: int, tails: str, rope: float,
                  seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    rates: dict[str, list[float]] = {"t": [], "wilcoxon": [], "verdict": []}
    spent = []
    for _ in range(studies):
        trainer = FakeTrainer(rng, [0.0] * 10, [0.7] * 10, 40, tails)
        per_cell = run_rule(rule, trainer, 10)
        rates["t"].append(np.mean([np.mean(d) - ci_half_width(d) > 0 for _, d in per_cell]))
        rates["wilcoxon"].append(np.mean([np.mean(d) > 0 and wilcoxon(d).pvalue < 0.05
                                          for _, d in per_cell]))
        rates["verdict"].append(np.mean([verdict(d, rope).verdict == "better"
                                         for _, d in per_cell]))
        spent.append(runs_spent(per_cell))
    result = {"runs": float(np.mean(spent))}
    for claim, values in rates.items():
        result[claim] = float(np.mean(values))
        result[claim + "_error"] = float(np.std(values, ddof=1) / math.sqrt(studies))
    return result


def reached(rule: AdaptiveSeeds, differences: list[float]) -> bool:
    """Whether a cell's differences meet the rule's target (precise or decided)."""
    if rule.until.kind == "precision":
        return ci_half_width(differences) <= rule.until.value
    return verdict(differences, rule.until.value).verdict != "undecided"


def mixed_scenario(rule: AdaptiveSeeds, studies: int, tails: str, seed: int
                   ) -> dict[str, float]:
    """Runs the rule spends, the share of cells that reach its target, the bias of the
    estimated differences, and the fixed seeds that reach the target as often."""
    rng = np.random.default_rng(seed)
    cells = len(MIXED_DIFFERENCES)
    trainers = [FakeTrainer(rng, MIXED_DIFFERENCES, MIXED_NOISE, rule.max, tails)
                for _ in range(studies)]
    adaptive = [run_rule(rule, trainer, cells) for trainer in trainers]
    share = np.mean([reached(rule, d) for per_cell in adaptive for _, d in per_cell])
    bias = np.mean([np.mean(d) - truth for per_cell in adaptive
                    for (_, d), truth in zip(per_cell, MIXED_DIFFERENCES, strict=True)])
    fixed_n, fixed_share = rule.max, math.nan
    for n in range(rule.min, rule.max + 1):
        fixed_share = np.mean([reached(rule, d) for trainer in trainers
                               for _, d in run_rule(n, trainer, cells)])
        if fixed_share >= share:
            fixed_n = n
            break
    return {"runs": float(np.mean([runs_spent(p) for p in adaptive])), "share": float(share),
            "bias": float(bias), "fixed_n": fixed_n, "fixed_share": float(fixed_share),
            "fixed_runs": fixed_n * (cells + 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--rules", nargs="+", default=[
        "3:15:precision(0.5):1", "5:15:precision(0.5):1", "8:15:precision(0.5):1",
        "5:15:precision(0.5):2", "5:15:precision(0.3):1", "3:15:decided(rope=0.5):1",
        "5:15:decided(rope=0.5):1", "5:15:decided(rope=0.5):2"],
        help="min:max:until:batch")
    parser.add_argument("--tails", nargs="+", default=["normal", "t3"])
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    rules = []
    for text in args.rules:
        low, high, until, batch = text.split(":")
        rules.append(AdaptiveSeeds(min=int(low), max=int(high), until=until, batch=int(batch)))
    started = time.perf_counter()
    rows = []
    for tails in args.tails:
        for fixed in (3, 5, 10):
            null = null_scenario(fixed, args.studies, tails, 0.5, seed=1)
            rows.append([f"fixed {fixed} seeds", tails, _rate(null, "t"),
                         _rate(null, "wilcoxon"), _rate(null, "verdict"),
                         f"{null['runs']:.1f}", "", "", "", ""])
        for rule in rules:
            null = null_scenario(rule, args.studies, tails, rule.until.value, seed=1)
            mixed = mixed_scenario(rule, args.studies, tails, seed=2)
            rows.append([rule.text(), tails, _rate(null, "t"), _rate(null, "wilcoxon"),
                         _rate(null, "verdict"),
                         f"{null['runs']:.1f}", f"{mixed['runs']:.1f}",
                         f"{mixed['share']:.1%}", f"{mixed['bias']:+.3f}",
                         f"{mixed['fixed_n']} seeds: {mixed['fixed_runs']} runs "
                         f"({mixed['fixed_share']:.1%}); adaptive "
                         f"{mixed['runs'] / mixed['fixed_runs']:.2f}x"])
    header = ["seeds", "noise", "null: false 'better', t 95% CI (nominal 2.5%)",
              "null: false 'better', Wilcoxon p < 0.05 (nominal <= 2.5%)",
              "null: false 'better' verdict (nominal <= 5%)", "null: runs / study",
              "mixed: runs / study", "mixed: cells reaching the target",
              "mixed: bias of the difference (points)",
              "fixed seeds reaching the target as often"]
    report(f"Adaptive seeds, simulated ({args.studies} studies per row and scenario; 10 "
           "cells + baseline; null: all equal, paired std 0.71 points; mixed: "
           "differences +1 to -10 points; ± = Monte-Carlo standard error over studies; "
           f"{time.perf_counter() - started:.0f} s)", header, rows, append=not args.no_append)


def _rate(result: dict[str, float], key: str) -> str:
    return f"{result[key]:.2%} ± {result[key + '_error']:.2%}"


if __name__ == "__main__":
    main()
