"""Users' own components without a fork: plug-in files, modules and installed packages.

A plug-in is Python code that registers components on actlab's registries with the
public decorators (``actlab.register_activation``, ``register_init``,
``register_model``, ``register_dataset``; docs/extending.md). It comes from

- a study file's ``plugins:`` list (a path relative to the study file, or a module name),
- ``--plugin FILE|MODULE`` on the command line,
- an installed package's entry point in the group ``actlab.plugins``.

A plug-in is kept as its source text (:class:`PluginSource`) and its digest, a hash of
that text. A file plug-in is executed from the text as the module
``actlab_plugin_<digest>``, so every process that trains the study (``--jobs`` workers,
Ray tasks on other machines) runs the very code the study was planned with, and moving
or renaming the file changes nothing. A module plug-in is imported by name (it may
import its own package) and its file's text is kept for the record. Every component a
plug-in registers carries the plug-in's digest (``entry.meta["plugin"]``), which enters
the run id of the runs that use it: editing a plug-in re-runs its runs and only those.

A plug-in that cannot be loaded raises :class:`PluginError`, one line naming the file,
the line and the problem, and leaves the registries as they were.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import logging
import sys
import traceback
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from actlab import catalog, registry

log = logging.getLogger(__name__)

class PluginError(ValueError):
    """A plug-in cannot be found or loaded; the message names the file, line and fix."""


class PluginSource(BaseModel):
    """A plug-in as a study keeps it: where it came from, how to load it, its text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    origin: str  # as the user wrote it: "serf.py", "mypkg.acts"
    kind: Literal["file", "module"]
    text: str
    path: str = ""  # where the text was read (for messages)

    @property
    def digest(self) -> str:
        """16 hex digits of SHA-256 of the source text (what a run id covers)."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @property
    def module_name(self) -> str:
        return f"actlab_plugin_{self.digest}" if self.kind == "file" else self.origin


def read(reference: str, base: Path | None = None) -> PluginSource:
    """The plug-in ``reference`` names: a ``.py`` file (relative to ``base``, the study
    file's folder, else the working directory) or an importable module."""
    reference = reference.strip()
    looks_like_file = reference.endswith(".py") or "/" in reference or "\\" in reference
    if looks_like_file:
        path = Path(reference).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            where = f" (relative to {base})" if base is not None else ""
            raise PluginError(f"plugin file {reference} does not exist{where}: give a path "
                              "to a .py file (in a study file, relative to that file) or "
                              "an importable module name")
        return PluginSource(origin=reference, kind="file", text=_text(path), path=str(path))
    try:
        found = importlib.util.find_spec(reference)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin or not Path(found.origin).is_file():
        raise PluginError(f"plugin '{reference}' is neither a .py file nor an importable "
                          "module: check the spelling, the file's suffix (.py) or that "
                          "its package is installed")
    return PluginSource(origin=reference, kind="module", text=_text(Path(found.origin)),
                        path=found.origin)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PluginError(f"plugin {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise PluginError(f"cannot read plugin {path}: {exc.strerror}") from None


def installed() -> list[PluginSource]:
    """The plug-ins installed packages offer through :data:`actlab.catalog.ENTRY_POINT_GROUP`."""
    return [read(entry.value.split(":")[0])
            for entry in importlib.metadata.entry_points(group=catalog.ENTRY_POINT_GROUP)]


def load_installed() -> None:
    """Load the installed packages' plug-ins (once per process)."""
    global _installed_done
    if not _installed_done:
        _installed_done = True
        load(installed())


_installed_done = False


#: Digest -> source of every plug-in loaded in this process, and what each registered.
_loaded: dict[str, PluginSource] = {}
_added: dict[str, list[Any]] = {}
_entries: dict[str, list[tuple[Any, Any]]] = {}


def loaded() -> list[PluginSource]:
    """The plug-ins loaded in this process, in load order."""
    return list(_loaded.values())


def load(sources: Iterable[PluginSource]) -> None:
    """Load each plug-in once per process; a plug-in loaded before makes its components
    the active ones again (another version of the same file may have replaced them
    since). A plug-in that fails raises :class:`PluginError` and registers nothing."""
    sources = list(sources)
    for source in sources:  # loaded before: its entries are the active ones again
        for registry_, entry in _entries.get(source.digest, []):
            registry_.activate(entry)
    sources = [source for source in sources if source.digest not in _loaded]
    if sources:
        for kind in catalog.REGISTRIES:  # actlab's own entries first, never a plug-in's
            catalog.registry(kind)
    for source in sources:
        with registry.loading_plugin(source.digest) as added:
            try:
                _execute(source)
            except BaseException as exc:
                registry.forget(added)
                sys.modules.pop(source.module_name, None)
                if isinstance(exc, PluginError | KeyboardInterrupt | SystemExit):
                    raise
                raise PluginError(_describe(source, exc)) from None
        _loaded[source.digest] = source
        _added[source.digest] = added
        _entries[source.digest] = [(r, r.entry(name)) for r, name, _ in added]
        log.info("plugin %s loaded (%s)", source.origin, source.digest)


def unload(source: PluginSource) -> None:
    """Take a plug-in's components out of this process's registries (a notebook that
    reloads an edited file; tests), putting back any built-in it overrode."""
    if source.digest not in _loaded:
        return
    for (registry_, entry), (_, _, replaced) in zip(_entries.pop(source.digest),
                                                    _added.pop(source.digest), strict=True):
        registry_.deactivate(entry, replaced if replaced is not None and (
            "plugin" not in replaced.meta or replaced.meta["plugin"] in _loaded) else None)
    del _loaded[source.digest]
    sys.modules.pop(source.module_name, None)


def _execute(source: PluginSource) -> None:
    if source.kind == "module":
        importlib.import_module(source.origin)
        return
    module = types.ModuleType(source.module_name)
    module.__file__ = source.path or source.origin
    sys.modules[source.module_name] = module  # classes pickle by reference to it
    code = compile(source.text, source.path or source.origin, "exec")
    exec(code, module.__dict__)  # the user's own code, run as `import` would run it


def _describe(source: PluginSource, exc: BaseException) -> str:
    """``plugin serf.py, line 4: NameError: name 'erff' is not defined``."""
    if isinstance(exc, SyntaxError) and exc.filename in (source.path, source.origin):
        return (f"plugin {source.origin}, line {exc.lineno}: syntax error: {exc.msg}")
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in (source.path, source.origin):
            line = frame.lineno
    where = f"plugin {source.origin}" + (f", line {line}" if line else "")
    if isinstance(exc, ImportError):
        return f"{where}: cannot import: {exc}"
    return f"{where}: {type(exc).__name__}: {exc}"
