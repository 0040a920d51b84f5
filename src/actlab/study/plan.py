"""Study files: load, validate and expand into run specs.

A study file is YAML. Top-level run fields (``model``, ``act``, ``init``, ``gain``,
``data``, ``train``, ``model_options``) give the base run; ``grid`` maps an axis (a run
field, a dotted path such as ``train.optimizer.lr``, or a shorthand such as ``lr``) to
the list of its values; ``seeds`` is a count (0..n-1) or a list. The plan is the
Cartesian product of the axes times the seeds, in file order. Every problem is collected
before anything runs and reported together, each with the cell it occurs in.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from actlab.study.spec import RunSpec, StrictModel

STUDY_KEYS = {"name", "description", "grid", "seeds"}

#: Short axis names for the fields studies vary most.
AXIS_SHORTHANDS = {
    "lr": "train.optimizer.lr",
    "optimizer": "train.optimizer.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "schedule": "train.schedule",
    "dataset": "data.name",
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


class Study(StrictModel):
    """A validated study: a base run, grid axes and seeds."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    description: str = ""
    base: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    seeds: int | list[int] = 1

    @field_validator("grid")
    @classmethod
    def _axes_known(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        resolved: dict[str, list[Any]] = {}
        for axis, values in grid.items():
            path = AXIS_SHORTHANDS.get(axis, axis)
            if path == "seed":
                raise ValueError("vary seeds with the top-level `seeds:` key, not a grid axis")
            if path not in RUN_FIELD_PATHS:
                valid = sorted(p for p in RUN_FIELD_PATHS | set(AXIS_SHORTHANDS) if p != "seed")
                raise ValueError(f"unknown grid axis '{axis}'; use one of: {', '.join(valid)}")
            if not values:
                raise ValueError(f"grid axis '{axis}' has no values")
            if path in resolved:
                raise ValueError(f"grid axis '{axis}' is given twice")
            resolved[path] = list(values)
        return resolved

    @field_validator("seeds")
    @classmethod
    def _seeds_valid(cls, seeds: int | list[int]) -> int | list[int]:
        if isinstance(seeds, int) and seeds < 1:
            raise ValueError("seeds must be a positive count or a non-empty list of integers")
        if isinstance(seeds, list) and (not seeds or len(set(seeds)) != len(seeds)):
            raise ValueError("seeds must be a non-empty list of distinct integers")
        return seeds

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def cells(self) -> Iterable[dict[str, Any]]:
        """Each grid cell as ``{axis_path: value}``, seeds innermost, in file order."""
        axes = list(self.grid)
        for values in itertools.product(*(self.grid[a] for a in axes)):
            for seed in self.seed_list:
                yield {**dict(zip(axes, values, strict=True)), "seed": seed}

    def expand(self) -> list[RunSpec]:
        """The run specs of every cell; raises :class:`StudyError` listing all problems."""
        specs: list[RunSpec] = []
        problems: dict[str, None] = {}  # ordered set: one line per distinct problem
        for cell in self.cells():
            raw = copy.deepcopy(self.base)
            for path, value in cell.items():
                _set_path(raw, path, value)
            try:
                specs.append(RunSpec.model_validate(raw))
            except ValidationError as exc:
                where = ", ".join(f"{k}={v}" for k, v in cell.items() if k != "seed")
                for line in format_validation_error(exc):
                    problems[f"{line} (in cell {where or 'base'})"] = None
        if problems:
            raise StudyError(f"study '{self.name}'", list(problems))
        seen: dict[str, RunSpec] = {}
        for spec in specs:
            if spec.run_id in seen:
                raise StudyError(f"study '{self.name}'", [
                    f"two cells describe the same run ({spec.describe()}); "
                    "remove the duplicate grid value"])
            seen[spec.run_id] = spec
        return specs


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
    try:
        return Study.model_validate({**{k: data[k] for k in STUDY_KEYS if k in data},
                                     "base": base})
    except ValidationError as exc:
        raise StudyError(source, format_validation_error(exc)) from None


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; errors name the file and each problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StudyError(str(path), ["file not found; check the path"]) from None
    except OSError as exc:
        raise StudyError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise StudyError(str(path), [f"YAML syntax error{where}: {problem}"]) from None
    study = parse_study(data, str(path))
    study.expand()  # validate every cell now, before anything runs
    return study
