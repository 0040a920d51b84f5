"""One small generic registry: a name maps to a factory.

Every axis of a study (activations, initializers, models, datasets, schedules) is a
:class:`Registry`. Names are case-insensitive, aliases resolve to their canonical name,
registering a name twice is an error, and an unknown name fails with the list of valid
names and the closest matches, so a typo in a study file is fixed in one step.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


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
        self, name: str, *, aliases: tuple[str, ...] = (), **meta: object
    ) -> Callable[[T], T]:
        """Decorator registering ``factory`` under ``name`` and ``aliases``."""

        def decorator(factory: T) -> T:
            self.add(name, factory, aliases=aliases, **meta)
            return factory

        return decorator

    def add(self, name: str, factory: T, *, aliases: tuple[str, ...] = (), **meta: object) -> None:
        """Register ``factory``; a name or alias already taken raises DuplicateNameError."""
        key = name.lower()
        for candidate in (key, *(a.lower() for a in aliases)):
            if candidate in self._entries or candidate in self._aliases:
                raise DuplicateNameError(f"{self.kind} '{candidate}' is already registered")
        self._entries[key] = Entry(key, factory, tuple(a.lower() for a in aliases), dict(meta))
        if not getattr(factory, "__module__", "").startswith("actlab."):
            self.foreign = True
        for alias in aliases:
            self._aliases[alias.lower()] = key

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
