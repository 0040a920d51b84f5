"""One small generic registry: a name maps to a factory.

Every axis of a study (activations, initializers, models, datasets, schedules) is a
:class:`Registry`. Names are case-insensitive, aliases resolve to their canonical name,
registering a name twice is an error (unless the new entry says ``override``), and an
unknown name fails with the list of valid names and the closest matches, so a typo in a
study file is fixed in one step.

Entries added while a plug-in loads (:func:`loading_plugin`) carry the plug-in's digest
in ``meta["plugin"]``, and can be taken out again if the plug-in fails to load
(:func:`forget`): see actlab/plugins.py.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import hashlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: While a plug-in loads: its digest and the (registry, name, replaced entry) it added.
_plugin: tuple[str, list[tuple[Registry[Any], str, Entry[Any] | None]]] | None = None


@contextlib.contextmanager
def loading_plugin(digest: str) -> Iterator[list[tuple[Registry[Any], str, Entry[Any] | None]]]:
    """Attribute every entry added in this block to the plug-in ``digest``; yields the
    list of what was added (for :func:`forget`)."""
    global _plugin
    previous, added = _plugin, []
    _plugin = (digest, added)
    try:
        yield added
    finally:
        _plugin = previous


def _source_digest(factory: object) -> str:
    """A hash of ``factory``'s source code where Python can find it (else of its name):
    what stands for a plug-in's digest when a component is registered directly."""
    try:
        text = inspect.getsource(factory)  # type: ignore[arg-type]
    except (OSError, TypeError):
        text = f"{getattr(factory, '__module__', '')}.{getattr(factory, '__qualname__', '')}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def forget(added: list[tuple[Registry[Any], str, Entry[Any] | None]]) -> None:
    """Take out what a failed plug-in added, putting back any entry it overrode."""
    for registry, name, replaced in reversed(added):
        registry._remove(name)
        if replaced is not None:
            registry._insert(replaced)
    for registry in {id(r): r for r, _, _ in added}.values():
        registry.foreign = any("plugin" in entry.meta for entry in registry._entries.values())


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable.
        return str(self.args[0])


class DuplicateNameError(ValueError):
    """Raised when a name or alias is registered twice."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered factory with its canonical name, aliases and free-form metadata."""

    name: str
    factory: T
    aliases: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)


class Registry(Generic[T]):
    """Maps case-insensitive names (and aliases) to factories.

    >>> r = Registry("activation")
    >>> _ = r.register("relu", aliases=("rectifier",))(lambda: "relu!")
    >>> r.get("ReLU")()
    'relu!'
    >>> r.canonical("rectifier")
    'relu'
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        #: Whether an entry was registered from outside actlab (a user's own component).
        self.foreign = False

    def register(
        self, name: str, *, aliases: tuple[str, ...] = (), override: bool = False,
        **meta: object
    ) -> Callable[[T], T]:
        """Decorator registering ``factory`` under ``name`` and ``aliases``."""

        def decorator(factory: T) -> T:
            self.add(name, factory, aliases=aliases, override=override, **meta)
            return factory

        return decorator

    def add(self, name: str, factory: T, *, aliases: tuple[str, ...] = (),
            override: bool = False, **meta: object) -> None:
        """Register ``factory``; a name or alias already taken raises DuplicateNameError,
        unless ``override`` (then the entry of that name is replaced)."""
        key = name.lower()
        # Another version of a plug-in replaces the one loaded before it in this process
        # (an edited file; a Ray worker serving studies planned with different versions).
        newer = _plugin is not None and "plugin" in getattr(self._entries.get(key), "meta", {})
        replaced = self._entries.get(key) if override or newer else None
        if replaced is not None:
            self._remove(key)
        for candidate in (key, *(a.lower() for a in aliases)):
            if candidate in self._entries or candidate in self._aliases:
                if replaced is not None:
                    self._insert(replaced)
                raise DuplicateNameError(
                    f"{self.kind} '{candidate}' is already registered; choose another name, "
                    "or pass override=True to replace it")
        # actlab's own modules may first be imported while a plug-in loads: theirs stay own.
        own = getattr(factory, "__module__", "").startswith("actlab.")
        if _plugin is not None and not own:
            meta = {**meta, "plugin": _plugin[0]}
            _plugin[1].append((self, key, replaced))
        elif not own:  # registered by a user's code outside a plug-in (a notebook)
            meta = {**meta, "plugin": _source_digest(factory)}
        self._insert(Entry(key, factory, tuple(a.lower() for a in aliases), dict(meta)))
        if not own:
            self.foreign = True

    def activate(self, entry: Entry[T]) -> None:
        """Make ``entry`` (one this registry held before) the one of its name again."""
        if self._entries.get(entry.name) is not entry:
            if entry.name in self._entries:
                self._remove(entry.name)
            self._insert(entry)

    def deactivate(self, entry: Entry[T], previous: Entry[T] | None = None) -> None:
        """Take ``entry`` out if it is the active one of its name, putting ``previous``
        (the entry it replaced) back where the name is then free."""
        if self._entries.get(entry.name) is entry:
            self._remove(entry.name)
        if previous is not None and previous.name not in self._entries:
            self._insert(previous)
        self.foreign = any("plugin" in e.meta for e in self._entries.values())

    def _insert(self, entry: Entry[T]) -> None:
        self._entries[entry.name] = entry
        for alias in entry.aliases:
            self._aliases[alias] = entry.name

    def _remove(self, name: str) -> None:
        entry = self._entries.pop(name)
        for alias in entry.aliases:
            self._aliases.pop(alias, None)

    def canonical(self, name: str) -> str:
        """The canonical name for ``name`` or one of its aliases."""
        key = name.strip().lower()
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise UnknownNameError(self._unknown_message(name))
        return key

    def entry(self, name: str) -> Entry[T]:
        return self._entries[self.canonical(name)]

    def get(self, name: str) -> T:
        """The factory registered under ``name`` (or an alias of it)."""
        return self.entry(name).factory

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.strip().lower()
        return key in self._entries or key in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def list(self, pattern: str = "*") -> list[str]:
        """Canonical names matching a shell-style wildcard (``'*relu*'``), sorted."""
        pattern = pattern.lower()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def _unknown_message(self, name: str) -> str:
        known = sorted(self._entries)
        close = difflib.get_close_matches(name.lower(), [*known, *self._aliases], n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} '{name}'.{hint} Choose from: {', '.join(known)}."
