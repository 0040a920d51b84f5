"""Study files: load, validate and expand into run specs.

A study file is YAML (docs/study-files.md). Top-level run fields (``model``, ``act``,
``init``, ``gain``, ``data``, ``train``, ``model_options``) give the base run; ``grid``
maps an axis (a run field, a dotted path such as ``train.optimizer.lr``, or a shorthand
such as ``lr``) to the list of its values; ``zip`` groups axes that vary together;
``grids`` adds further grids (each a product on top of the base run, e.g. an lr sweep on
one model); ``exclude`` drops matching cells and ``include`` adds cells; ``per_model`` overrides
fields for one model; ``variants`` names activation/initializer choices; ``extends``
starts from another study file; ``seeds`` is a count (0..n-1) or a list. The plan is
the product of the grid axes and zip groups (file order), then the further grids' cells
that are not already in it, minus exclusions, plus inclusions, times the seeds. Every
problem is collected before anything runs and reported together, each with its cell.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from actlab import catalog, plugins
from actlab.plugins import PluginSource
from actlab.plugins import read as read_plugin
from actlab.spec import RunSpec, StrictModel
from actlab.study.stopping import AdaptiveSeeds
from actlab.study.tuning import TuneSpec

STUDY_KEYS = {"name", "description", "grid", "grids", "seeds", "zip", "exclude", "include",
              "per_model", "variants", "extends", "plugins", "tune"}

#: Short axis names for the fields studies vary most.
AXIS_SHORTHANDS = {
    "lr": "train.optimizer.lr",
    "optimizer": "train.optimizer.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "schedule": "train.schedule",
    "dataset": "data.name",
    "weight_decay": "train.optimizer.weight_decay",
}


class StudyError(ValueError):
    """A study file is invalid; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


def format_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """One readable line per pydantic error: ``field.path: message``."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "study"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see docs for the allowed fields)"
        lines.append(f"{where}: {message}")
    return lines


def _field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= _field_paths(annotation, f"{path}.")
    return paths


RUN_FIELD_PATHS = _field_paths(RunSpec)


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def _axis_path(axis: str, kind: str = "grid") -> str:
    path = AXIS_SHORTHANDS.get(axis, axis)
    if path == "seed":
        raise ValueError("vary seeds with the top-level `seeds:` key, not an axis")
    if path not in RUN_FIELD_PATHS:
        valid = sorted(p for p in RUN_FIELD_PATHS | set(AXIS_SHORTHANDS) if p != "seed")
        raise ValueError(f"unknown {kind} axis '{axis}'; use one of: {', '.join(valid)}")
    return path


def _canonical(path: str, value: Any) -> Any:
    """A written value in the form the run spec stores it, so that ``exclude: {act:
    LReLU(slope=0.3)}`` matches a cell written ``leaky_relu(slope=0.3)``."""
    kinds = {"act": "activation", "init": "initializer", "train.schedule": "schedule"}
    names = {"model": "model", "data.name": "dataset"}
    try:
        if path in kinds:
            return catalog.component_label(kinds[path], value)
        if path in names and isinstance(value, str):
            return catalog.canonical_name(names[path], value)
    except ValueError:
        pass  # an invalid value is reported when its cell is validated
    return value


def _resolve_axes(grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """A grid's axes as run-field paths, each with a non-empty list of values."""
    resolved: dict[str, list[Any]] = {}
    for axis, values in grid.items():
        path = _axis_path(axis)
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid axis '{axis}' has no values")
        if path in resolved:
            raise ValueError(f"grid axis '{axis}' is given twice")
        resolved[path] = list(values)
    return resolved


class Study(StrictModel):
    """A validated study: a base run, axes (grid and zip groups), rules and seeds."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    description: str = ""
    base: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    grids: list[dict[str, list[Any]]] = Field(default_factory=list)
    zip: list[dict[str, list[Any]]] = Field(default_factory=list)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    include: list[dict[str, Any]] = Field(default_factory=list)
    per_model: dict[str, dict[str, Any]] = Field(default_factory=dict)
    variants: dict[str, Any] = Field(default_factory=dict)
    #: A count (0..n-1), a list, or adaptive seeds (study/stopping.py).
    seeds: int | list[int] | AdaptiveSeeds = 1
    #: The study's own components (actlab/plugins.py), kept as their source text.
    plugins: list[PluginSource] = Field(default_factory=list)
    #: Each group tuned within the same budget before its final runs (study/tuning.py).
    tune: TuneSpec | None = None

    @field_validator("tune", mode="before")
    @classmethod
    def _tune_axes(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("space"), dict):
            value = {**value, "space": {_axis_path(axis, "tune.space"): values
                                        for axis, values in value["space"].items()}}
        if isinstance(value, dict) and isinstance(value.get("per"), list):
            value = {**value, "per": [_axis_path(str(axis), "tune.per")
                                      for axis in value["per"]]}
        return value

    @field_validator("plugins", mode="before")
    @classmethod
    def _plugin_sources(cls, value: Any) -> Any:
        """Names and paths (relative to the working directory here; ``load_study``
        reads them relative to the study file) become their sources."""
        if not isinstance(value, list):
            raise ValueError("plugins must be a list of .py files or module names")
        return [plugins.read(item) if isinstance(item, str) else item for item in value]

    def load_plugins(self) -> None:
        """Load the study's plug-ins and the installed ones into this process (each once):
        every process that expands or trains the study calls this first."""
        plugins.load(self.plugins)
        plugins.load_installed()

    @field_validator("grid")
    @classmethod
    def _axes_known(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return _resolve_axes(grid)

    @field_validator("grids")
    @classmethod
    def _further_grids(cls, grids: list[dict[str, list[Any]]]) -> list[dict[str, list[Any]]]:
        resolved = []
        for index, grid in enumerate(grids):
            if not isinstance(grid, dict) or not grid:
                raise ValueError(f"grids entry {index + 1} must map axes to lists of values, "
                                 "e.g. {model: [resnet18], lr: [0.001, 0.01]}")
            try:
                resolved.append(_resolve_axes(grid))
            except ValueError as exc:
                raise ValueError(f"grids entry {index + 1}: {exc}") from None
        return resolved

    @field_validator("zip")
    @classmethod
    def _zip_groups(cls, groups: list[dict[str, list[Any]]]) -> list[dict[str, list[Any]]]:
        resolved = []
        for index, group in enumerate(groups):
            if len(group) < 2:
                raise ValueError(f"zip group {index + 1} needs at least two axes that vary "
                                 "together (a single axis belongs in grid)")
            lengths = {axis: len(values) for axis, values in group.items()}
            if len(set(lengths.values())) != 1 or 0 in lengths.values():
                raise ValueError(f"zip group {index + 1}: the axes must have the same, non-zero "
                                 f"number of values; got {lengths}")
            resolved.append({_axis_path(axis, "zip"): list(values)
                             for axis, values in group.items()})
        return resolved

    @field_validator("exclude", "include")
    @classmethod
    def _rules(cls, rules: list[dict[str, Any]], info: Any) -> list[dict[str, Any]]:
        resolved = []
        for rule in rules:
            if not rule:
                raise ValueError(f"an {info.field_name} entry must name at least one field")
            resolved.append({_axis_path(axis, info.field_name): value
                             for axis, value in rule.items()})
        return resolved

    @field_validator("seeds", mode="before")
    @classmethod
    def _adaptive_seeds(cls, seeds: Any) -> Any:
        if isinstance(seeds, dict):
            if isinstance(seeds.get("baseline"), dict):
                seeds = {**seeds, "baseline": {_axis_path(str(axis), "seeds.baseline"): value
                                               for axis, value in seeds["baseline"].items()}}
            return AdaptiveSeeds.model_validate(seeds)
        return seeds

    @field_validator("seeds")
    @classmethod
    def _seeds_valid(cls, seeds: int | list[int] | AdaptiveSeeds
                     ) -> int | list[int] | AdaptiveSeeds:
        if isinstance(seeds, int) and seeds < 1:
            raise ValueError("seeds must be a positive count or a non-empty list of integers")
        if isinstance(seeds, list) and (not seeds or len(set(seeds)) != len(seeds)):
            raise ValueError("seeds must be a non-empty list of distinct integers")
        return seeds

    @model_validator(mode="after")
    def _tuning_fits_the_study(self) -> Study:
        if self.tune is None:
            return self
        varied = [*self.grid, *(axis for group in self.zip for axis in group)]
        unknown = [axis for axis in self.tune.per or [] if axis not in varied]
        if unknown:
            raise ValueError(f"tune.per names {', '.join(unknown)}, which the study does not "
                             f"vary; per takes axes of grid or zip ({', '.join(varied) or 'none'})")
        both = sorted(set(self.tune.space) & set(varied))
        if both:
            raise ValueError(f"{', '.join(both)} is both a study axis and tuned; an axis is "
                             "either compared (grid) or tuned (tune.space)")
        overlap = sorted(set(self.tune.seed_list) & set(self.seed_list))
        if overlap:
            raise ValueError(f"tuning and final seeds overlap ({overlap}): the final runs "
                             "must use fresh seeds; change tune.seeds or seeds")
        if self.grids or self.include:
            raise ValueError("a tuned study takes its cells from grid and zip only (not "
                             "grids or include)")
        return self

    @model_validator(mode="after")
    def _adaptive_fits_the_study(self) -> Study:
        if not isinstance(self.seeds, AdaptiveSeeds):
            return self
        if self.tune is not None:
            raise ValueError("adaptive seeds and tune: cannot be combined yet; give the tuned "
                             "study a fixed number of final seeds (seeds: N)")
        if self.grids or self.include:
            raise ValueError("a study with adaptive seeds takes its cells from grid and zip "
                             "only (not grids or include): each cell needs its baseline cell")
        compared = self.compared_axes()
        if not compared:
            raise ValueError("adaptive seeds compare cells with a baseline, but the study "
                             "varies no axis other than model and dataset; add one to grid "
                             "(e.g. act)")
        for axis, value in (self.seeds.baseline or {}).items():
            if axis not in compared:
                raise ValueError(f"seeds.baseline names {axis}, which the study does not "
                                 f"compare; use one of {', '.join(compared)}")
            if not any(_matches(axis, v, value) for v in compared[axis]):
                raise ValueError(f"seeds.baseline: {axis}={value} is not one of the study's "
                                 f"values ({', '.join(map(str, compared[axis]))})")
        return self

    @model_validator(mode="after")
    def _axes_once(self) -> Study:
        seen = list(self.grid)
        for group in self.zip:
            seen += list(group)
        repeated = sorted({p for p in seen if seen.count(p) > 1})
        if repeated:
            raise ValueError(f"axis {', '.join(repeated)} is given in more than one of grid "
                             "and zip")
        return self

    @property
    def seed_list(self) -> list[int]:
        """The seeds every cell runs on (with adaptive seeds, the first ``min``)."""
        if isinstance(self.seeds, AdaptiveSeeds):
            return list(range(self.seeds.min))
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def adaptive(self) -> AdaptiveSeeds | None:
        return self.seeds if isinstance(self.seeds, AdaptiveSeeds) else None

    @property
    def grows(self) -> bool:
        """Whether runs join the plan as results come in (tuning finals, adaptive seeds)."""
        return self.tune is not None or self.adaptive is not None

    def compared_axes(self) -> dict[str, list[Any]]:
        """The grid and zip axes other than the task's (model, dataset and their
        options), with their values: what cells are compared on."""
        axes = {**self.grid, **{axis: values for group in self.zip
                                for axis, values in group.items()}}
        return {axis: values for axis, values in axes.items()
                if axis != "model" and not axis.startswith(("data.", "model_options"))}

    def baseline_values(self) -> dict[str, Any]:
        """The compared axes' values of the baseline cell: ``seeds.baseline``, the
        first value of every other compared axis."""
        given = (self.adaptive.baseline if self.adaptive else None) or {}
        return {axis: given.get(axis, values[0]) for axis, values in self.compared_axes().items()}

    def adaptive_cells(self) -> list[tuple[dict[str, Any], str, int]]:
        """Every cell (without seed) with its origin and the index of its baseline cell
        in this list (its own index for a baseline cell); raises StudyError when a
        cell's baseline is not in the plan (excluded)."""
        cells = list(self._unseeded_cells())
        baseline = self.baseline_values()

        def key(cell: dict[str, Any]) -> tuple:
            return tuple(sorted((path, repr(_canonical(path, value)))
                                for path, value in cell.items()))

        index = {key(cell): position for position, (cell, _) in enumerate(cells)}
        found, missing = [], []
        for cell, origin in cells:
            target = key({**cell, **baseline})
            if target not in index:
                missing.append(", ".join(f"{k}={_short(v)}" for k, v in cell.items()))
            found.append((cell, origin, index.get(target, -1)))
        if missing:
            raise StudyError(f"study '{self.name}'", [
                f"cell {where} has no baseline cell ("
                + ", ".join(f"{k}={_short(v)}" for k, v in baseline.items())
                + ") in the plan: do not exclude the baseline" for where in missing[:5]])
        return found

    def seed_specs(self, cell: dict[str, Any], origin: str, seeds: Iterable[int]
                   ) -> list[RunSpec]:
        """The runs of one cell on ``seeds``."""
        cells = [({**cell, "seed": seed}, origin) for seed in seeds]
        return self._specs_of(cells) if cells else []

    def cell_count(self) -> int:
        """How many runs the plan has at most (exclusions not subtracted), counted
        without building a cell: what a user is asked to confirm before a huge grid."""
        main = math.prod(len(values) for values in self.grid.values())
        main *= math.prod(len(next(iter(group.values()))) for group in self.zip)
        further = sum(math.prod(len(values) for values in grid.values())
                      for grid in self.grids)
        per_cell = self.adaptive.max if self.adaptive else len(self.seed_list)
        if self.tune is not None:  # trials on the tuning seeds, then the finals
            per_cell += len(self.tune.configurations()) * len(self.tune.seed_list)
            per_cell += len(self.seed_list) if self.tune.shared else 0
        return (main + further + len(self.include)) * per_cell

    def _excluded(self, cell: dict[str, Any]) -> bool:
        for rule in self.exclude:
            if all(path in cell and _matches(path, cell[path], wanted)
                   for path, wanted in rule.items()):
                return True
        return False

    def cells(self) -> Iterable[dict[str, Any]]:
        """Each cell as ``{axis_path: value}``: grid axes and zip groups in file order,
        then each further grid's, minus exclusions, then the inclusions; seeds
        innermost."""
        for cell, _ in self._cells_with_origin():
            yield cell

    def _cells_with_origin(self) -> Iterable[tuple[dict[str, Any], str]]:
        for cell, origin in self._unseeded_cells():
            for seed in self.seed_list:
                yield {**cell, "seed": seed}, origin

    def _unseeded_cells(self) -> Iterable[tuple[dict[str, Any], str]]:
        axes: list[list[dict[str, Any]]] = [
            [{path: value} for value in values] for path, values in self.grid.items()]
        axes += [[dict(zip(group, row, strict=True)) for row in zip(*group.values(), strict=True)]
                 for group in self.zip]
        products = [(axes, "grid")] + [
            ([[{path: value} for value in values] for path, values in grid.items()], "grids")
            for grid in self.grids]
        for product_axes, origin in products:
            for combination in itertools.product(*product_axes):
                cell: dict[str, Any] = {}
                for part in combination:
                    cell.update(part)
                if self._excluded(cell):
                    continue
                yield cell, origin
        for extra in self.include:
            yield extra, "include"

    def _raw_spec(self, cell: dict[str, Any]) -> dict[str, Any]:
        raw = copy.deepcopy(self.base)
        for path, value in cell.items():
            _set_path(raw, path, value)
        model = raw.get("model", RunSpec.model_fields["model"].default)
        for name, overrides in self.per_model.items():
            if _canonical("model", name) == _canonical("model", model):
                for path, value in flatten_fields(overrides).items():
                    if path not in cell:  # an explicit axis value wins over the override
                        _set_path(raw, path, copy.deepcopy(value))
        for field in ("act", "init"):
            value = raw.get(field)
            if isinstance(value, str) and value in self.variants:
                raw[field] = self.variants[value]
        return raw

    def expand(self) -> list[RunSpec]:
        """The run specs of every cell; raises :class:`StudyError` listing all problems.
        The specs of a study are built once per process (``load_study`` validates them,
        the runner then needs them again); a copy with other values is another study."""
        self.load_plugins()
        key = self.model_dump_json()
        if key not in _EXPANSIONS:
            if len(_EXPANSIONS) >= 8:
                _EXPANSIONS.pop(next(iter(_EXPANSIONS)))
            _EXPANSIONS[key] = self._expand()
        return list(_EXPANSIONS[key])

    def _expand(self) -> list[RunSpec]:
        if self.tune is not None:  # the tuning trials; finals join once they are decided
            shared = self._cells_with_origin() if self.tune.shared else []
            return self._specs_of([*self._trial_cells(), *shared])
        return self._specs_of(self._cells_with_origin())

    # -- tuning (study/tuning.py) -------------------------------------------------------
    def _trial_cells(self) -> Iterable[tuple[dict[str, Any], str]]:
        """The first rung's trials: every configuration on every cell and tuning seed (at
        the first rung's epochs under successive halving)."""
        assert self.tune is not None
        for cell, origin in self._unseeded_cells():
            epochs = self.tune.rungs(self._epochs_of(cell, origin))[0][1]
            shortened = {"train.epochs": epochs} if self.tune.method == "halving" else {}
            for configuration in self.tune.configurations():
                for seed in self.tune.seed_list:
                    yield {**cell, **configuration, **shortened, "seed": seed}, origin

    def _epochs_of(self, cell: dict[str, Any], origin: str) -> int:
        return self._specs_of([({**cell, "seed": self.seed_list[0]}, origin)])[0].train.epochs

    def group_epochs(self, group: str) -> int:
        """The epochs of a group's final runs (its last rung under halving)."""
        for cell, origin in self._unseeded_cells():
            probe = self._specs_of([({**cell, "seed": self.seed_list[0]}, origin)])[0]
            if self.group_of(probe) == group:
                return probe.train.epochs
        raise KeyError(group)

    def trial_specs(self, group: str, configurations: list[dict[str, Any]], epochs: int
                    ) -> list[RunSpec]:
        """A group's trials of ``configurations`` trained for ``epochs`` epochs (the
        trials successive halving promotes to a rung)."""
        assert self.tune is not None
        cells = []
        for cell, origin in self._unseeded_cells():
            probe = self._specs_of([({**cell, "seed": self.seed_list[0]}, origin)])[0]
            if self.group_of(probe) == group:
                cells += [({**cell, **configuration, "train.epochs": epochs, "seed": seed},
                           origin) for configuration in configurations
                          for seed in self.tune.seed_list]
        return self._specs_of(cells) if cells else []

    def tuned_axes(self) -> list[str]:
        """The axes whose values get their own tuning (``tune.per``, default every axis
        the study varies); model and dataset always do."""
        assert self.tune is not None
        varied = [*self.grid, *(axis for group in self.zip for axis in group)]
        return list(self.tune.per) if self.tune.per is not None else varied

    def group_of(self, spec: RunSpec) -> str:
        """The tuning group of a run: its model, dataset and tuned axes' values."""
        values = flatten_fields(spec.model_dump(mode="json"))
        key = {"model": spec.model_label, "dataset": spec.data.name,
               **{axis: values.get(axis) for axis in self.tuned_axes()}}
        return ", ".join(f"{k}={_short(v)}" for k, v in key.items())

    def shared_configuration(self) -> dict[str, Any]:
        """The tuned fields at the study's own values (what ``tune.shared`` runs)."""
        assert self.tune is not None
        base = flatten_fields(RunSpec.model_validate(self._raw_spec({})).model_dump(mode="json"))
        return {axis: base.get(axis) for axis in self.tune.space}

    def configuration_of(self, spec: RunSpec) -> dict[str, Any]:
        """The values of the tuned space a run trains with."""
        assert self.tune is not None
        values = flatten_fields(spec.model_dump(mode="json"))
        return {axis: values.get(axis) for axis in self.tune.space}

    def role_of(self, spec: RunSpec) -> str | None:
        """``tune`` for a tuning trial, ``final`` for a final run, None without tuning."""
        if self.tune is None:
            return None
        return "tune" if spec.seed in self.tune.seed_list else "final"

    def final_specs(self, selections: dict[str, dict[str, Any]]) -> list[RunSpec]:
        """The final runs of the decided groups: each cell of a group at its selected
        configuration, on the study's seeds."""
        cells = []
        for cell, origin in self._unseeded_cells():
            probe = self._specs_of([({**cell, "seed": self.seed_list[0]}, origin)])[0]
            chosen = selections.get(self.group_of(probe))
            if chosen is not None:
                cells += [({**cell, **chosen, "seed": seed}, origin) for seed in self.seed_list]
        return self._specs_of(cells) if cells else []

    def _specs_of(self, cells: Iterable[tuple[dict[str, Any], str]]) -> list[RunSpec]:
        specs: list[tuple[RunSpec, str]] = []
        problems: dict[str, None] = {}  # ordered set: one line per distinct problem
        # Every cell asks the catalog the same few questions, and the cyclic garbage
        # collector, run again and again over the growing list of specs (none of which
        # holds a cycle), would otherwise take 60% of a 50,000-run expansion.
        with catalog.steady(), _collector_paused():
            for cell, origin in cells:
                try:
                    specs.append((RunSpec.model_validate(self._raw_spec(cell)), origin))
                except ValidationError as exc:
                    where = ", ".join(f"{k}={v}" for k, v in cell.items() if k != "seed")
                    for line in format_validation_error(exc):
                        problems[f"{line} (in cell {where or 'base'})"] = None
        if problems:
            raise StudyError(f"study '{self.name}'", list(problems))
        if not specs:
            raise StudyError(f"study '{self.name}'", [
                "the plan is empty: `exclude` removes every cell of the grid; remove or "
                "narrow an exclude entry"])
        seen: dict[str, RunSpec] = {}
        for spec, origin in specs:
            run_id = spec.run_id
            if run_id in seen and origin == "grids":
                continue  # a further grid may cross the main one (the sweep's base lr)
            if run_id in seen:
                raise StudyError(f"study '{self.name}'", [
                    f"two cells describe the same run ({spec.describe()}); "
                    "remove the duplicate grid value or include entry"])
            seen[run_id] = spec
        return list(seen.values())


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (reference counting still frees)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def cell_text(cell: dict[str, Any]) -> str:
    """'act=silu, lr=0.01': a cell's axes by their short names and its values as the run
    specs name them (so a cell written ``act: swish`` reads as the report's ``silu``)."""
    short = {path: name for name, path in AXIS_SHORTHANDS.items()}
    return ", ".join(f"{short.get(path, path)}={_short(_canonical(path, value))}"
                     for path, value in cell.items()) or "base"


#: Expanded plans of this process, by the study's content (see Study.expand).
_EXPANSIONS: dict[str, list[RunSpec]] = {}


def _matches(path: str, value: Any, wanted: Any) -> bool:
    options = wanted if isinstance(wanted, list) else [wanted]
    return any(_canonical(path, value) == _canonical(path, option) for option in options)


#: Run fields that are mappings but one value each (never flattened into their keys).
WHOLE_FIELDS = frozenset({"model_options", "data.options"})


def flatten_fields(values: dict[str, Any], prefix: str = "",
                   whole: frozenset[str] = WHOLE_FIELDS) -> dict[str, Any]:
    """``{train: {epochs: 3}}`` or ``{train.epochs: 3}`` -> ``{"train.epochs": 3}``
    (the ``whole`` fields, e.g. model_options, stay a mapping: they are one field)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        path = AXIS_SHORTHANDS.get(f"{prefix}{key}", f"{prefix}{key}")
        if isinstance(value, dict) and path not in whole:
            flat.update(flatten_fields(value, f"{path}.", whole))
        else:
            flat[path] = value
    return flat


def parse_study(data: Any, source: str = "study") -> Study:
    """Validate an already-parsed study document (a mapping)."""
    if not isinstance(data, dict):
        raise StudyError(source, ["a study file must be a YAML mapping of keys to values"])
    base = {k: v for k, v in data.items() if k not in STUDY_KEYS}
    unknown = sorted(set(base) - set(RunSpec.model_fields))
    if unknown:
        allowed = ", ".join(sorted(STUDY_KEYS | set(RunSpec.model_fields)))
        raise StudyError(source, [f"unknown top-level key(s) {', '.join(unknown)}; "
                                  f"allowed keys: {allowed}"])
    if "seed" in base:
        raise StudyError(source, ["use `seeds:` (a count or a list) instead of `seed:`"])
    if "extends" in data:
        raise StudyError(source, ["`extends:` is resolved when a study is loaded from a file "
                                  "(load_study); merge the mappings yourself here"])
    try:
        return Study.model_validate({**{k: data[k] for k in STUDY_KEYS if k in data},
                                     "base": base})
    except ValidationError as exc:
        raise StudyError(source, format_validation_error(exc)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps
    the last one silently, so `act:` written twice would drop the first list)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice (lines {seen[key]} and "
                    f"{key_node.start_mark.line + 1}): keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError(str(path), ["file not found; check the path"]) from None
    except UnicodeDecodeError as exc:
        raise StudyError(str(path), [
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): a "
            "study file is YAML text; check that this is the file you meant"]) from None
    except OSError as exc:
        raise StudyError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise StudyError(str(path), [f"YAML syntax error{where}: {problem}"]) from None


def deep_merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` over ``base``: mappings merge key by key, anything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_document(path: Path, chain: tuple[Path, ...] = ()) -> Any:
    """A study file's mapping with its ``extends:`` chain resolved (paths relative to the
    file that names them). Its ``plugins`` are read here, relative to the file, and a
    study that extends another adds its plug-ins to the other's."""
    data = _read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("plugins"), list):
        data["plugins"] = [plugins.read(item, base=path.parent).model_dump()
                           if isinstance(item, str) else item for item in data["plugins"]]
    if not isinstance(data, dict) or "extends" not in data:
        return data
    parent = Path(str(data.pop("extends"))).expanduser()
    if not parent.is_absolute():
        parent = path.parent / parent
    if parent.resolve() in {p.resolve() for p in (*chain, path)}:
        raise StudyError(str(path), [f"extends: {parent} is part of a cycle "
                                     f"({' -> '.join(str(p) for p in (*chain, path, parent))})"])
    if "name" not in data:
        raise StudyError(str(path), ["a study that extends another needs its own `name:`"])
    base = load_document(parent, (*chain, path))
    if not isinstance(base, dict):
        raise StudyError(str(parent), ["a study file must be a YAML mapping of keys to values"])
    merged = deep_merge(base, data)
    if isinstance(base.get("plugins"), list) and isinstance(data.get("plugins"), list):
        merged["plugins"] = base["plugins"] + [p for p in data["plugins"]
                                               if p not in base["plugins"]]
    return merged


#: Above this many runs a command-line plan needs --yes (actlab run/plan).
LARGE_PLAN = 10_000


def load_study(path: str | Path, max_runs: int | None = None,
               plugins: Sequence[str] = ()) -> Study:
    """Read and validate a study file; errors name the file and each problem. With
    ``max_runs``, a plan of more runs is refused before any cell is built. ``plugins``
    (files relative to the working directory, or modules: the command line's
    ``--plugin``) are added to the study's own and travel with it."""
    path = Path(path)
    document = load_document(path)
    if plugins and isinstance(document, dict):
        given = document.get("plugins")
        document["plugins"] = [*(given if isinstance(given, list) else []),
                               *(read_plugin(reference).model_dump() for reference in plugins)]
    study = parse_study(document, str(path))
    count = study.cell_count()
    if max_runs is not None and count > max_runs:
        raise StudyError(str(path), [
            f"the plan has up to {count:,} runs, more than {max_runs:,}: pass --yes if you "
            "mean it (building and storing them takes a while), or narrow the grid"])
    study.expand()  # validate every cell now, before anything runs
    if study.adaptive is not None:
        study.adaptive_cells()  # every cell has its baseline cell
    return study
