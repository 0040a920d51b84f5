"""The cell columns of a study's runs: what a report groups by, labelled once per plan.

Every run row carries the axis columns :data:`CELL_COLUMNS`: ``model`` with its options
(``deep_cnn(depth=5)``), the dataset, the corruption (``none`` for clean data), the
activation, initializer, optimizer, base lr, schedule, ``setting`` (any other field that
varies in the study: ``epochs=10``) and the seed, so that runs that differ in anything
but the seed never share a cell. The labels depend on the whole plan (which fields vary,
which model options any run sets), so they are computed when the plan is registered and
stored with each run (:meth:`actlab.study.store.Store.register_study`); reading a store
needs neither torch nor the model zoo.
"""

from __future__ import annotations

import json
from typing import Any

from actlab import catalog
from actlab.spec import RunSpec, option_label
from actlab.study.plan import AXIS_SHORTHANDS, WHOLE_FIELDS, flatten_fields

CELL_COLUMNS = ("model", "dataset", "corruption", "act", "init", "optimizer", "lr",
                "schedule", "setting", "seed")
#: Identity fields covered by the named columns (the rest feed ``setting``).
NAMED_FIELDS = {"model", "model_options", "act", "init", "seed", "data.name",
                "data.corruption", "train.optimizer.name", "train.optimizer.lr",
                "train.schedule"}


def cell_labels(specs: list[RunSpec]) -> list[dict[str, Any]]:
    """The cell columns of each run of a plan, in :data:`CELL_COLUMNS` order."""
    return [{"model": model, "dataset": spec.data.name, "corruption": spec.corruption_label,
             "act": str(spec.act), "init": str(spec.init),
             "optimizer": spec.train.optimizer.name, "lr": spec.train.optimizer.lr,
             "schedule": str(spec.train.schedule), "setting": setting, "seed": spec.seed}
            for spec, model, setting in zip(specs, model_labels(specs), settings(specs),
                                            strict=True)]


def model_labels(specs: list[RunSpec]) -> list[str]:
    """Per run, the model with every option that any run of that model sets, defaults
    written out: ``deep_cnn(depth=5)`` beside ``deep_cnn(depth=2)``, not a bare
    ``deep_cnn`` (the run spec drops options at their default)."""
    given: dict[str, set[str]] = {}
    for spec in specs:
        given.setdefault(spec.model, set()).update(spec.model_options)
    defaults_of = {model: catalog.model_options(model) for model in given}
    labels = []
    for spec in specs:
        defaults = defaults_of[spec.model]
        shown = [k for k in defaults if k in given[spec.model]]
        labels.append(option_label(spec.model, {k: spec.model_options.get(k, defaults[k])
                                                for k in shown}))
    return labels


def settings(specs: list[RunSpec]) -> list[str]:
    """Per run, the identity fields outside the named columns whose values differ across
    ``specs``, as ``epochs=10, data.train_per_class=500`` (empty when none differ)."""
    short = {path: name for name, path in AXIS_SHORTHANDS.items()}
    flat = [flatten_fields(spec.identity(), whole=WHOLE_FIELDS | {"data.corruption"})
            for spec in specs]
    paths = sorted({p for fields in flat for p in fields if not p.startswith("plugins.")}
                   - NAMED_FIELDS)
    varying = [p for p in paths if len({_comparable(f.get(p)) for f in flat}) > 1]
    return [", ".join(f"{short.get(p, p)}={_short_value(f.get(p))}" for p in varying)
            for f in flat]


def _comparable(value: Any) -> Any:
    """A hashable stand-in for a field's value that tells 1, 1.0 and True apart (as
    their JSON does), built without writing JSON for the usual scalar."""
    if value is None or isinstance(value, str | int | float):
        return type(value), value
    return json.dumps(value, sort_keys=True)


def _short_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short_value(v)}" for k, v in value.items()) + "}"
    return str(value)
