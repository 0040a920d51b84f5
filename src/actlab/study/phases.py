"""The two phases of a tuned study (study/tuning.py): what is planned now, given the store.

A tuned study's plan is its tuning trials plus the final runs of every group whose
trials are all finished. Both are pure functions of the study file and the stored
results, so every process (a resumed ``actlab run``, a ``--jobs`` worker, the Ray
driver) computes the same plan and the same selections, and a study killed in either
phase resumes with no run lost or repeated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from actlab.spec import RunSpec
from actlab.study.plan import Study
from actlab.study.store import Store
from actlab.study.tuning import select

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
    """A group of a tuned study: its trials' progress and, once decided, its selection."""

    group: str
    trials: int
    finished: int
    selection: Selection | None


def tuning_state(store: Store | None, study: Study) -> list[GroupState]:
    """Every tuning group of ``study`` with what the store holds of it."""
    assert study.tune is not None
    trials = [spec for spec in study.expand() if study.role_of(spec) == "tune"]
    results = store.validation_results(study.name, study.tune.select) if store else {}
    groups: dict[str, list[RunSpec]] = {}
    for spec in trials:
        groups.setdefault(study.group_of(spec), []).append(spec)
    states = []
    for group, specs in groups.items():
        done = [(study.configuration_of(s), results[s.run_id][1]) for s in specs
                if s.run_id in results]
        selection = None
        if len(done) == len(specs):
            try:
                chosen, metric = select(study.tune, done)
            except ValueError:  # every trial diverged: the group cannot be decided
                chosen, metric = None, math.nan
            if chosen is not None:
                selection = Selection(group, chosen, metric, len(specs),
                                      study.tune.on_edge(chosen))
        states.append(GroupState(group, len(specs), len(done), selection))
    return states


def current_plan(store: Store | None, study: Study) -> list[RunSpec]:
    """The runs planned now: every run of an untuned study; a tuned study's trials and
    the final runs of its decided groups."""
    specs = study.expand()
    if study.tune is None:
        return specs
    chosen = {state.group: state.selection.configuration
              for state in tuning_state(store, study) if state.selection is not None}
    planned = {spec.run_id for spec in specs}  # a final at the shared values is that run
    return specs + [s for s in study.final_specs(chosen) if s.run_id not in planned]


def extend_with_decided(store: Store, study: Study, study_id: int) -> int:
    """Plan the final runs of the groups decided since the plan was registered; returns
    how many runs were added (0 for an untuned study)."""
    if study.tune is None:
        return 0
    finals = current_plan(store, study)[len(study.expand()):]
    if not finals:
        return 0
    return store.extend_plan(study_id, finals, [study.role_of(s) for s in finals])
