"""What the component registries answer, remembered so that most commands need no torch.

Validating a study (is ``leaky_relu(slope=0.3)`` an activation, what is its canonical
label, does ``resnet20`` take 28x28 grey images?) and listing a registry only need a few
answers from the registries of activations, initializers, models, datasets, schedules
and corruptions. Those registries live in modules that import torch, which alone takes
about two seconds; ``actlab plan``, ``actlab list`` and the store's readers should answer
in a fraction of that (benchmarks/startup.py).

Every answer is a pure function of the code, so the catalog asks the registries once
per version of the code and keeps the answers (or the error message of a bad value) in
``$ACTLAB_CACHE/catalog-<fingerprint>.json``. The fingerprint covers actlab's version,
the size and modification time of each of its source files, torch's version and the
installed plug-in packages' entry points: an edit, an upgrade, another torch or a new
plug-in package gives a new file. A question the file cannot answer imports the
registries, is answered by them, and is added. Answers go through JSON in either case,
so a process that asked the registries itself and one that read the file see the same
values (docs/design.md, "The component catalog").

The registries and the functions that answer are found by name (:data:`SOURCES`), as
entry points are: the catalog sits below every component package and imports none of
them until a question needs it.

Only the registries as actlab ships them are remembered: once a registry holds an entry
from outside actlab (a component registered by a user's own code), every question is
asked afresh in that process and nothing is written, so an answer about it is never
kept for, or kept from, another process.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from actlab import __version__
from actlab.components import resolve_component
from actlab.paths import cache_root

log = logging.getLogger(__name__)

#: Where each registry and each answering function lives ("module:attribute").
SOURCES: dict[str, str] = {
    "activation": "actlab.activations:ACTIVATIONS",
    "initializer": "actlab.inits:INITS",
    "model": "actlab.models:MODELS",
    "dataset": "actlab.data:DATASETS",
    "schedule": "actlab.schedules:SCHEDULES",
    "corruption": "actlab.data.corrupt:CORRUPTIONS",
    # Building a resolved component once, so that bad option values fail at plan time.
    "build activation": "actlab.activations:build_activation",
    "build initializer": "actlab.inits:build_init",
    "build schedule": "actlab.schedules:build_schedule",
    "model options": "actlab.models:model_options",
    "model misfit": "actlab.models:model_misfit",
    "dataset shape": "actlab.data:dataset_shape",
}
#: The kinds of component with a registry.
REGISTRIES = ("activation", "initializer", "model", "dataset", "schedule", "corruption")
#: The registries ``actlab list NAME`` shows, by the name it takes.
LISTED = {"activations": "activation", "inits": "initializer", "models": "model",
          "datasets": "dataset", "schedules": "schedule"}

F = TypeVar("F", bound=Callable[..., Any])


def source(name: str) -> Any:
    """The object :data:`SOURCES` names (imports its package, and with it torch)."""
    module, attribute = SOURCES[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def registry(kind: str) -> Any:
    """The live registry of ``kind``."""
    return source(kind)


def extended() -> bool:
    """Whether a registry loaded in this process holds an entry registered from outside
    actlab (then the remembered answers may not hold here). Asked before every answer,
    so it only reads a flag per registry (Registry.foreign)."""
    for module, attribute in _REGISTRY_PLACES:
        if getattr(getattr(sys.modules.get(module), attribute, None), "foreign", False):
            return True
    return False


_REGISTRY_PLACES = [tuple(SOURCES[kind].split(":")) for kind in REGISTRIES]


#: The entry-point group through which installed packages offer plug-ins
#: (actlab/plugins.py).
ENTRY_POINT_GROUP = "actlab.plugins"


def installed_entry_points() -> list[str]:
    """``name = module`` of each entry point in :data:`ENTRY_POINT_GROUP`, sorted."""
    return sorted(f"{entry.name} = {entry.value}"
                  for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


@functools.cache
def fingerprint() -> str:
    """A short hash of everything the answers depend on (see the module docstring),
    computed once per process."""
    root = Path(__file__).parent
    digest = hashlib.sha256(__version__.encode())
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        digest.update(importlib.metadata.version("torch").encode())
    for entry in installed_entry_points():  # installing a plug-in package renews the file
        digest.update(entry.encode())
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class _Answers:
    """The remembered answers of this process, backed by the catalog file."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.answers: dict[str, Any] = {}
        self.where: tuple[str | None, ...] = ()

    def load(self) -> dict[str, Any]:
        # What the file's path depends on, compared as plain strings: building the path
        # for every answer cost more than the answer (a 50,000-run plan asks 350,000).
        where = (os.environ.get("ACTLAB_CACHE"), os.environ.get("HOME"), fingerprint())
        if where != self.where or self.path is None:  # first use, or the cache moved
            path = cache_root() / f"catalog-{where[2]}.json"
            if path != self.path:
                self.path, self.answers = path, self._read(path)
            self.where = where
        return self.answers

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def save(self) -> None:
        """Merge with what other processes wrote meanwhile and replace the file
        atomically; a cache that cannot be written only costs speed."""
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            merged = {**self._read(self.path), **self.answers}
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False,
                                             prefix=".catalog-", suffix=".tmp") as handle:
                json.dump(merged, handle, sort_keys=True)
            os.replace(handle.name, self.path)
            for stale in self.path.parent.glob("catalog-*.json"):
                if stale != self.path:
                    stale.unlink(missing_ok=True)
        except OSError as exc:
            log.debug("cannot write the component catalog %s: %s", self.path, exc)


_answers = _Answers()
#: Answers by (question, repr of its arguments) while :func:`steady` holds, else None.
_steady: dict[tuple[str, str], dict[str, Any]] | None = None


@contextlib.contextmanager
def steady() -> Iterator[None]:
    """Answer repeated questions from memory inside this block.

    Every answer otherwise checks where the catalog file lives and whether a registry
    was extended, about 10 microseconds; a plan of 50,000 runs asks 400,000 questions,
    most of them the same few. Within the block the environment and the registries are
    taken as they were on entry (nothing a plan's validation does changes them); with a
    user's own components loaded the memory is all there is (nothing is written)."""
    global _steady
    if _steady is not None:
        yield
        return
    _steady = {}
    try:
        yield
    finally:
        _steady = None


def remembered(function: F) -> F:
    """Answer from the catalog, asking ``function`` only the first time. ``function``
    returns JSON-able values and raises ValueError for a bad question; both are kept."""

    def answer(*args: Any) -> dict[str, Any]:
        if extended():  # a user's own components: ask the live registries every time
            try:
                return {"value": json.loads(json.dumps(function(*args)))}
            except ValueError as exc:
                return {"error": str(exc)}
        key = json.dumps([function.__name__, *args], sort_keys=True, default=repr)
        answers = _answers.load()
        if key not in answers:
            try:
                answers[key] = {"value": json.loads(json.dumps(function(*args)))}
            except ValueError as exc:
                answers[key] = {"error": str(exc)}
            _answers.save()
        return answers[key]

    @functools.wraps(function)
    def ask(*args: Any) -> Any:
        if _steady is None:
            found = answer(*args)
        else:
            memo_key = (function.__name__, repr(args))
            found = _steady.get(memo_key) or _steady.setdefault(memo_key, answer(*args))
        if "error" in found:
            raise ValueError(found["error"])
        return found["value"]

    return ask  # type: ignore[return-value]


def _plain_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Unknown names (KeyError) and bad option types (TypeError) as ValueErrors with the
    registry's message, so that the catalog can keep them."""

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except (KeyError, TypeError) as exc:
            raise ValueError(str(exc)) from None

    return call


# -- the questions -------------------------------------------------------------------------
def listing(kind: str) -> list[dict[str, Any]]:
    """Each entry of a listed registry: its name, aliases and a one-line description (the
    reference it implements, else the first line of its docstring)."""
    return listings()[kind]


@remembered
def listings() -> dict[str, list[dict[str, Any]]]:
    """:func:`listing` of every listed registry, asked together (one import of torch)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for kind in LISTED.values():
        live = registry(kind)
        rows[kind] = []
        for name in live:
            entry = live.entry(name)
            doc = (entry.factory.__doc__ or "").strip().splitlines()
            rows[kind].append({"name": name, "aliases": list(entry.aliases),
                               "description": str(entry.meta.get("reference", ""))
                               or (doc[0] if doc else "")})
    return rows


@remembered
@_plain_errors
def canonical_name(kind: str, name: str) -> str:
    """The registered name of ``name`` or one of its aliases (a ValueError listing the
    valid names otherwise)."""
    return registry(kind).canonical(name)


@remembered
@_plain_errors
def component_label(kind: str, value: Any) -> str:
    """The canonical label of a component written as text or a mapping
    (``leaky_relu(slope=0.3)``): the name and the options that differ from their
    defaults. The component is built once (activations for 4 channels) so that bad
    option values, not only bad names, are errors here."""
    import torch

    spec = resolve_component(registry(kind), value)
    build = source(f"build {kind}")
    with torch.random.fork_rng(devices=[]):  # a random start must not shift any run
        build(spec, 4) if kind == "activation" else build(spec)  # 4 channels
    return spec.label


@remembered
@_plain_errors
def plugin_digest(kind: str, name: str) -> str:
    """The digest of the plug-in that registered ``name`` (actlab/plugins.py), "" for
    actlab's own components: it enters the run id of the runs that use it."""
    return str(registry(kind).entry(name).meta.get("plugin", ""))


@remembered
@_plain_errors
def model_options(name: str) -> dict[str, Any]:
    """The options of a registered model with their defaults."""
    return source("model options")(name)


@remembered
@_plain_errors
def model_misfit(name: str, options: dict[str, Any], channels: int, image_size: int,
                 num_classes: int) -> str | None:
    """Why the model cannot take such inputs (None if it can), from a build on
    PyTorch's meta device."""
    return source("model misfit")(name, json.dumps(options, sort_keys=True), channels,
                                  image_size, num_classes)


@remembered
@_plain_errors
def fixup_models() -> list[str]:
    """The models built for Fixup initialization (no normalization layers)."""
    live = registry("model")
    return [name for name in live if live.entry(name).meta.get("fixup")]


@remembered
@_plain_errors
def dataset_shape(name: str, options: dict[str, Any]) -> list[int | None]:
    """[channels, image size, classes] of a dataset with ``options``, as far as they are
    known before loading it (None where only the data can tell)."""
    shape = source("dataset shape")(name, options)
    return [shape.channels, shape.image_size, shape.num_classes]
