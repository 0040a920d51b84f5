"""The activation registry, the :class:`Activation` base module and :class:`ActSpec`.

Every nonlinearity that actlab puts into a model is an :class:`Activation` built from an
:class:`ActSpec`; the spec travels with the module (``module.spec``) so that the model
builder can verify after construction that every site carries the requested activation.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from actlab.components import Component, ComponentSpec, resolve_component
from actlab.registry import Registry

ACTIVATIONS: Registry[type[Activation]] = Registry("activation")


@dataclass(frozen=True)
class ActProperties:
    """What the theory layer and reports need to know about an activation."""

    formula: str
    reference: str = ""
    output_range: tuple[float, float] = (float("-inf"), float("inf"))
    monotonic: bool = True
    smooth: bool = True
    zero_centred: bool = False
    rectifier: bool = False  # has a region of exactly zero output (dead units possible)
    learnable: tuple[str, ...] = field(default_factory=tuple)
    #: The range in words where a learnable parameter sets it (``output_range`` then
    #: holds its value at the default options).
    range_text: str = ""
    #: Declared by nobody (a plug-in without ``properties``): the flags are not claims.
    unknown: bool = False

    @property
    def range_label(self) -> str:
        low, high = self.output_range
        return self.range_text or f"[{low:g}, {high:g}]"

    @property
    def bounded(self) -> bool:
        low, high = self.output_range
        return low > float("-inf") and high < float("inf")


class Activation(nn.Module):
    """Base class of every activation module actlab builds.

    Subclasses declare ``properties`` and implement ``forward``. Constructor keyword
    arguments other than ``channels`` are the user-facing options of the activation.
    """

    properties: ClassVar[ActProperties]
    #: Options drawn per site from U(low, high) when not given (TAct's alpha and beta):
    #: the matched gain averages over them (:func:`actlab.activations.gains.second_moment`).
    random_init: ClassVar[dict[str, tuple[float, float]]] = {}
    #: Options that make a typical instance where some option has no default (expr's
    #: formula): what registry-wide listings and tests build (:func:`example_act`).
    example: ClassVar[dict[str, Any]] = {}
    spec: ActSpec | None = None

    def extra_repr(self) -> str:
        return self.spec.label if self.spec is not None else ""

    def tracked_values(self) -> dict[str, float]:
        """Named scalar values the engine records per epoch (parameters, flattened)."""
        values: dict[str, float] = {}
        with torch.no_grad():
            for name, param in self.named_parameters():
                flat = param.detach().float().flatten().tolist()
                if len(flat) == 1:
                    values[name] = flat[0]
                else:
                    values.update({f"{name}[{i}]": v for i, v in enumerate(flat)})
        return values

    def constrain(self) -> None:
        """Project parameters back into their domain after an optimizer step (no-op here)."""


def register_activation(
    name: str, *, aliases: tuple[str, ...] = (), override: bool = False
) -> Any:
    """Class decorator adding an activation to :data:`ACTIVATIONS` (the public API for
    plug-ins: docs/extending.md).

    The class is an :class:`Activation` (an ``nn.Module``) whose constructor keyword
    arguments are its options (``channels``, when it takes it, is supplied per site), whose
    learnable values are ``nn.Parameter`` objects (recorded per site and epoch), which may
    project them back into their domain in ``constrain()``, and which may declare
    ``properties`` (:class:`ActProperties`; unknown properties are shown as such).
    ``override=True`` replaces a registered activation of the same name."""

    def decorator(cls: type[Activation]) -> type[Activation]:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f"activation '{name}' must be a class derived from "
                            "actlab.Activation (an nn.Module), got "
                            f"{type(cls).__name__} {getattr(cls, '__name__', cls)!r}")
        if cls.forward is nn.Module.forward:
            raise TypeError(f"activation '{name}' ({cls.__name__}) has no forward(x)")
        if not issubclass(cls, Activation):
            raise TypeError(f"activation '{name}' ({cls.__name__}) must derive from "
                            "actlab.Activation, not only nn.Module (it carries the spec and "
                            "the tracked parameters)")
        if not hasattr(cls, "properties"):
            cls.properties = ActProperties(formula=cls.__name__, unknown=True)
        ACTIVATIONS.add(name, cls, aliases=aliases, override=override)
        return cls

    return decorator


@dataclass(frozen=True)
class ActSpec:
    """A resolved activation choice, e.g. ``leaky_relu(slope=0.3)``."""

    component: ComponentSpec

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def label(self) -> str:
        return self.component.label

    @property
    def kwargs(self) -> dict[str, Any]:
        return self.component.kwargs

    @property
    def properties(self) -> ActProperties:
        return ACTIVATIONS.get(self.name).properties

    def build(self, channels: int | None = None) -> Activation:
        """A fresh module for one activation site with ``channels`` channels (if known)."""
        cls = ACTIVATIONS.get(self.name)
        kwargs = self.kwargs
        if "channels" in inspect.signature(cls).parameters:
            module = cls(channels=channels, **kwargs)
        else:
            module = cls(**kwargs)
        module.spec = self
        return module

    def __str__(self) -> str:
        return self.label


def resolve_act(value: str | Mapping[str, Any] | Component | ActSpec) -> ActSpec:
    """Resolve ``'mish'``, ``'leaky_relu(slope=0.3)'``, a mapping or a run spec's
    :class:`~actlab.components.Component` into an :class:`ActSpec`."""
    if isinstance(value, ActSpec):
        return value
    return ActSpec(resolve_component(ACTIVATIONS, value))


def build_activation(value: str | Mapping[str, Any] | ActSpec, channels: int | None = None
                     ) -> Activation:
    """Shortcut: resolve ``value`` and build one activation module."""
    return resolve_act(value).build(channels)


def example_act(name: str) -> ActSpec:
    """The registered activation ``name`` at its defaults, with its ``example`` options
    where it needs some (``expr`` as Mish's formula)."""
    return resolve_act({"name": name, **ACTIVATIONS.get(name).example})
