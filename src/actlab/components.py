"""Named components with options: ``leaky_relu(slope=0.3)`` or ``{name: leaky_relu, slope: 0.3}``.

Activations, initializers and schedules are all chosen in a study file by a name plus
keyword options. :class:`ComponentSpec` is that choice, resolved against a registry:
the name is canonical, unknown options are rejected, defaults are filled in, and
:attr:`ComponentSpec.label` is a stable, readable string that omits default options, so
``leaky_relu`` and ``leaky_relu(slope=0.01)`` are the same cell while
``leaky_relu(slope=0.3)`` is a different one.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from actlab.registry import Registry

#: Constructor arguments supplied by the code building a component, never by the user.
BUILD_ARGUMENTS = frozenset({"self", "channels", "args", "kwargs"})


class ComponentSpecError(ValueError):
    """A component written in a study file or on the command line cannot be understood."""


def parse_component_text(text: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name(a=1, b='x')"`` into ``("name", {"a": 1, "b": "x"})``.

    Values are Python literals or bare words (``mode=fan_out`` reads as the string
    ``'fan_out'``); anything else (calls, positional arguments) is rejected with a message
    that shows the accepted form.
    """
    text = text.strip()
    form = "write it as name or name(option=value, ...), e.g. leaky_relu(slope=0.3)"
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise ComponentSpecError(f"cannot parse '{text}': {form}") from exc
    if isinstance(node, ast.Name):
        return node.id, {}
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise ComponentSpecError(f"cannot parse '{text}': {form}")
    options: dict[str, Any] = {}
    for index, argument in enumerate(node.args):  # expr("x * tanh(x)"): by position
        try:
            options[POSITIONAL.format(index)] = ast.literal_eval(argument)
        except ValueError as exc:
            raise ComponentSpecError(
                f"argument {index + 1} in '{text}' is not a literal value: {form}") from exc
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ComponentSpecError(f"cannot parse '{text}': {form}")
        if isinstance(keyword.value, ast.Name):  # a bare word is a string: mode=fan_out
            word = keyword.value.id  # ... except YAML's true and false
            options[keyword.arg] = {"true": True, "false": False}.get(word, word)
            continue
        try:
            options[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError as exc:
            raise ComponentSpecError(
                f"option '{keyword.arg}' in '{text}' is not a literal value: {form}"
            ) from exc
    return node.func.id, options


#: The key under which a positional argument waits for its name (resolve_component).
POSITIONAL = "#{}"


def _format_value(value: Any) -> str:
    if isinstance(value, str) and value.isidentifier():
        return value  # mode=fan_out
    return repr(value)  # floats in full, other text quoted: formula='x * tanh(x)'


def factory_defaults(factory: Callable[..., Any]) -> dict[str, Any]:
    """The user-settable keyword options of ``factory`` with their default values."""
    signature = inspect.signature(factory)
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name not in BUILD_ARGUMENTS
        and parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    }


@dataclass(frozen=True)
class ComponentSpec:
    """A registry name with fully resolved options (defaults filled in)."""

    kind: str
    name: str
    options: tuple[tuple[str, Any], ...] = ()
    defaults: tuple[tuple[str, Any], ...] = ()
    required: tuple[str, ...] = ()  # options without a default

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def label(self) -> str:
        """Canonical text: the name, plus the options that differ from their defaults."""
        defaults = dict(self.defaults)
        changed = [(k, v) for k, v in self.options if defaults.get(k, inspect.Parameter.empty) != v]
        # Required options (expr's formula) first, then the rest in name order.
        changed.sort(key=lambda item: item[0] not in self.required)
        if not changed:
            return self.name
        inner = ", ".join(f"{k}={_format_value(v)}" for k, v in changed)
        return f"{self.name}({inner})"

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Component:
    """A component as a run spec keeps it: its kind and canonical label, the name plus
    the options that differ from their defaults (``leaky_relu(slope=0.3)``). The label
    enters the run id; the component packages build from it (``resolve_act(component)``).
    """

    kind: str
    label: str

    @property
    def name(self) -> str:
        return self.label.split("(", 1)[0]

    @property
    def options(self) -> dict[str, Any]:
        """The options that differ from their defaults."""
        return parse_component_text(self.label)[1]

    def __str__(self) -> str:
        return self.label


def resolve_component(registry: Registry, value: str | Mapping[str, Any] | Component
                      ) -> ComponentSpec:
    """Resolve text, a mapping or a :class:`Component` against ``registry`` into a
    :class:`ComponentSpec`.

    Raises :class:`ComponentSpecError` (unknown option, missing ``name``) or the
    registry's UnknownNameError (unknown name, with the valid names listed).
    """
    if isinstance(value, ComponentSpec):
        return value
    if isinstance(value, Component):
        value = value.label
    if isinstance(value, Mapping):
        options = dict(value)
        if "name" not in options:
            raise ComponentSpecError(
                f"a {registry.kind} given as a mapping needs a 'name' key, got {sorted(options)}"
            )
        raw_name = str(options.pop("name"))
    elif isinstance(value, str):
        raw_name, options = parse_component_text(value)
    else:
        raise ComponentSpecError(
            f"a {registry.kind} must be a name, name(option=value) or a mapping, "
            f"got {type(value).__name__}"
        )
    name = registry.canonical(raw_name)
    factory = registry.get(name)
    defaults = factory_defaults(factory)
    options = _name_positional(registry.kind, name, options, list(defaults))
    takes_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
    unknown = [] if takes_any else sorted(set(options) - set(defaults))
    if unknown:
        accepted = ", ".join(sorted(defaults)) or "none"
        raise ComponentSpecError(
            f"{registry.kind} '{name}' has no option {', '.join(repr(u) for u in unknown)}; "
            f"its options are: {accepted}"
        )
    required = sorted(k for k, v in defaults.items() if v is inspect.Parameter.empty)
    missing = [k for k in required if k not in options]
    if missing:
        raise ComponentSpecError(f"{registry.kind} '{name}' needs option(s) {', '.join(missing)}")
    resolved = {**defaults, **options}
    return ComponentSpec(
        kind=registry.kind,
        name=name,
        options=tuple(sorted(resolved.items())),
        defaults=tuple(sorted((k, v) for k, v in defaults.items() if k not in required)),
        required=tuple(required),
    )


def _name_positional(kind: str, name: str, options: dict[str, Any], order: list[str]
                     ) -> dict[str, Any]:
    """Options given by position (``expr("x")``) under the name of the option at that
    position of the factory's signature."""
    named = {k: v for k, v in options.items() if not k.startswith("#")}
    for key in sorted(k for k in options if k.startswith("#")):
        index = int(key[1:])
        if index >= len(order):
            raise ComponentSpecError(f"{kind} '{name}' takes {len(order)} option(s) by "
                                     f"position, got {index + 1}")
        if order[index] in named:
            raise ComponentSpecError(f"{kind} '{name}' got option {order[index]} twice")
        named[order[index]] = options[key]
    return named
