"""Plans that grow as results come in: what is planned now, given the store.

A tuned study's plan (study/tuning.py) is its tuning trials plus the final runs of every
group whose trials are all finished. A study with adaptive seeds (study/stopping.py) runs
every cell on its first seeds, plus the further seeds its stopping rule asked for. Both
are pure functions of the study file and the stored results, so every process (a
resumed ``actlab run``, a ``--jobs`` worker, the Ray driver, ``actlab status``, the
report) computes the same plan, and a study killed at any point resumes with no run
lost or repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actlab.spec import RunSpec
from actlab.study.plan import Study, cell_text
from actlab.study.stopping import CellProgress, Pair, follow_cell
from actlab.study.store import Store
from actlab.study.tuning import configuration_text, rank

FINISHED = ("completed", "diverged", "failed")


@dataclass(frozen=True)
class Selection:
    """A decided group: the selected configuration and its mean validation metric."""

    group: str
    configuration: dict[str, Any]
    metric: float
    trials: int
    edges: list[str]  # axes selected at the edge of the space


@dataclass(frozen=True)
class GroupState:
    """A group of a tuned study: its trials' progress, the trials planned so far (with
    successive halving, the later rungs' as the earlier ones are decided), where losing
    configurations were stopped, and, once decided, its selection."""

    group: str
    trials: int
    finished: int
    selection: Selection | None
    planned: tuple[RunSpec, ...] = ()
    stopped: tuple[tuple[str, int], ...] = ()  # (configuration, epochs it reached)


def tuning_state(store: Store | None, study: Study) -> list[GroupState]:
    """Every tuning group of ``study`` with what the store holds of it."""
    assert study.tune is not None
    tune = study.tune
    first_rung = [spec for spec in study.expand() if study.role_of(spec) == "tune"]
    results = store.results(study.name, tune.select) if store else {}
    recorded = store.selections(study.name) if store else {}
    groups: dict[str, list[RunSpec]] = {}
    for spec in first_rung:
        groups.setdefault(study.group_of(spec), []).append(spec)
    states = []
    for group, specs in groups.items():
        rungs = tune.rungs(study.group_epochs(group))
        planned, stopped, selection = list(specs), [], None
        finished = total = 0
        for index, (_, epochs) in enumerate(rungs):
            total += len(specs)
            done = [(study.configuration_of(s), results[s.run_id][1]) for s in specs
                    if s.run_id in results]
            finished += len(done)
            if len(done) < len(specs):
                break
            ranked = _ranked(tune, done)
            if index == len(rungs) - 1:
                if group in recorded:  # decided before: the decision stands
                    ranked = [recorded[group]]
                if ranked:
                    chosen, metric = ranked[0]
                    selection = Selection(group, chosen, metric, len(planned),
                                          tune.on_edge(chosen))
                break
            kept = [configuration for configuration, _ in ranked[:rungs[index + 1][0]]]
            stopped += [(configuration_text(c), epochs) for c, _ in ranked[len(kept):]]
            specs = study.trial_specs(group, kept, rungs[index + 1][1])
            planned += specs
        states.append(GroupState(group, total, finished, selection, tuple(planned),
                                 tuple(stopped)))
    return states


def _ranked(tune: Any, done: list[tuple[dict[str, Any], float]]
            ) -> list[tuple[dict[str, Any], float]]:
    try:
        return rank(tune, done)
    except ValueError:  # every trial diverged: the group cannot be decided
        return []


@dataclass(frozen=True)
class CellSeeds:
    """A cell of a study with adaptive seeds: its label, its baseline's, the rule's
    progress (None for a baseline cell, which runs the most seeds any of its cells
    needs) and its runs planned now."""

    label: str
    baseline: str
    progress: CellProgress | None
    planned: tuple[RunSpec, ...]

    @property
    def seeds(self) -> int:
        return len(self.planned)


def seeding_state(store: Store | None, study: Study) -> list[CellSeeds]:
    """Every cell of a study with adaptive seeds, in plan order, with what the stopping
    rule makes of the stored results."""
    adaptive = study.adaptive
    assert adaptive is not None
    cells = study.adaptive_cells()
    specs = [study.seed_specs(cell, origin, range(adaptive.max)) for cell, origin, _ in cells]
    results = store.results(study.name, adaptive.metric) if store else {}

    def value(index: int, seed: int) -> float | None:
        found = results.get(specs[index][seed].run_id)
        return None if found is None else found[1]

    def pairs(index: int, base: int) -> Callable[[int], Pair]:
        def pair_of(seed: int) -> Pair:
            cell, baseline = value(index, seed), value(base, seed)
            return None if cell is None or baseline is None else (cell, baseline)
        return pair_of

    progress = {index: follow_cell(adaptive, pairs(index, base))
                for index, (_, _, base) in enumerate(cells) if base != index}
    labels = [cell_text(cell) for cell, _, _ in cells]
    states = []
    for index, (_, _, base) in enumerate(cells):
        if base == index:
            seeds = max([adaptive.min] + [p.seeds for i, p in progress.items()
                                          if cells[i][2] == index])
        else:
            seeds = progress[index].seeds
        states.append(CellSeeds(labels[index], labels[base], progress.get(index),
                                tuple(specs[index][:seeds])))
    return states


def current_plan(store: Store | None, study: Study) -> list[RunSpec]:
    """The runs planned now: every run of a fixed study; a tuned study's trials and
    the final runs of its decided groups; every cell's first seeds and the further
    seeds its stopping rule asked for (baselines first, then the most uncertain
    cells)."""
    specs = study.expand()
    if study.adaptive is not None:
        planned = {spec.run_id for spec in specs}
        states = sorted(seeding_state(store, study), key=lambda state: (
            state.progress is not None,
            -(state.progress.uncertainty if state.progress else 0.0)))
        return specs + [spec for state in states for spec in state.planned
                        if spec.run_id not in planned]
    if study.tune is None:
        return specs
    states = tuning_state(store, study)
    planned = {spec.run_id for spec in specs}
    for state in states:  # later rungs of successive halving, as they are decided
        for spec in state.planned:
            if spec.run_id not in planned:
                planned.add(spec.run_id)
                specs.append(spec)
    chosen = {state.group: state.selection.configuration
              for state in states if state.selection is not None}
    # A final at the shared values is that run, planned once.
    return specs + [s for s in study.final_specs(chosen) if s.run_id not in planned]


def extend_with_decided(store: Store, study: Study, study_id: int) -> int:
    """Plan the runs decided since the plan was registered (a tuned study's finals, the
    further seeds of adaptive cells); returns how many runs were added (0 for a study
    whose plan is fixed)."""
    if study.adaptive is not None:
        added = current_plan(store, study)[len(study.expand()):]
        return store.extend_plan(study_id, added, [None] * len(added)) if added else 0
    if study.tune is None:
        return 0
    store.record_selections(study_id, [
        (state.group, state.selection.configuration, state.selection.metric)
        for state in tuning_state(store, study) if state.selection is not None])
    finals = current_plan(store, study)[len(study.expand()):]
    if not finals:
        return 0
    return store.extend_plan(study_id, finals, [study.role_of(s) for s in finals])
