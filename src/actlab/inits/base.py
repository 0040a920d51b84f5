"""The initializer registry, :class:`Initializer` and :class:`InitSpec`.

An initializer is applied to a built model with :func:`apply_init`. The activation is
always an input: initializers that take a gain (Xavier, He, orthogonal) use the gain of
the model's activation under the study's gain mode (``matched`` by default, see
:mod:`actlab.activations.gains`), unless the initializer's own ``gain`` option fixes it.

What is initialized (the same for every initializer, as in the reference studies): the
weight of every Conv and Linear layer, the final classifier included; every such bias
is set to zero; normalization layers get weight 1 and bias 0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from actlab.activations import ActSpec, resolve_act
from actlab.activations.gains import gain_for
from actlab.components import Component, ComponentSpec, resolve_component
from actlab.registry import Registry

log = logging.getLogger(__name__)

INITS: Registry[type[Initializer]] = Registry("initializer")

WEIGHTED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm,
               nn.InstanceNorm2d)


def weighted_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Conv and Linear layers in registration order (the forward order of our models)."""
    for name, module in model.named_modules():
        if isinstance(module, WEIGHTED_LAYERS):
            yield name, module


class Initializer:
    """Base class: initialize every weighted layer with :meth:`init_weight`."""

    uses_gain: ClassVar[bool] = False
    reference: ClassVar[str] = ""

    def init_weight(self, weight: torch.Tensor, gain: float) -> None:
        raise NotImplementedError

    def gain_override(self) -> float | None:
        return getattr(self, "gain", None)

    def apply(self, model: nn.Module, gain: float, batch: torch.Tensor | None = None) -> dict:
        """Initialize ``model`` in place; returns a small report for the run's record."""
        with torch.no_grad():
            for _, layer in weighted_layers(model):
                self.init_weight(layer.weight, gain)
                if layer.bias is not None:
                    layer.bias.zero_()
            reset_norm_layers(model)
        return {}


def reset_norm_layers(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, NORM_LAYERS) and getattr(module, "weight", None) is not None:
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()


def register_init(name: str, *, aliases: tuple[str, ...] = (), override: bool = False) -> Any:
    """Class decorator adding an initializer to :data:`INITS` (the public API for
    plug-ins: docs/extending.md). The class derives from :class:`Initializer`, takes its
    options as constructor keyword arguments and implements ``init_weight(weight, gain)``
    (``uses_gain = True`` to receive the activation's matched gain) or the whole
    ``apply(model, gain, batch)``. ``override=True`` replaces one of the same name."""

    def decorator(cls: type[Initializer]) -> type[Initializer]:
        if not (isinstance(cls, type) and issubclass(cls, Initializer)):
            raise TypeError(f"initializer '{name}' must be a class derived from "
                            f"actlab.Initializer, got {getattr(cls, '__name__', cls)!r}")
        if (cls.init_weight is Initializer.init_weight and cls.apply is Initializer.apply):
            raise TypeError(f"initializer '{name}' ({cls.__name__}) implements neither "
                            "init_weight(weight, gain) nor apply(model, gain, batch)")
        INITS.add(name, cls, aliases=aliases, override=override)
        return cls

    return decorator


@dataclass(frozen=True)
class InitSpec:
    """A resolved initializer choice, e.g. ``he_normal(mode=fan_out)``."""

    component: ComponentSpec

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def label(self) -> str:
        return self.component.label

    def build(self) -> Initializer:
        return INITS.get(self.name)(**self.component.kwargs)

    def __str__(self) -> str:
        return self.label


def resolve_init(value: str | Mapping[str, Any] | Component | InitSpec) -> InitSpec:
    """Resolve ``'he_normal'``, ``'he_normal(mode=fan_out)'``, a mapping or a run spec's
    :class:`~actlab.components.Component` into an InitSpec."""
    if isinstance(value, InitSpec):
        return value
    return InitSpec(resolve_component(INITS, value))


def build_init(value: str | Mapping[str, Any] | Component | InitSpec) -> Initializer:
    """Shortcut: resolve ``value`` and build the initializer."""
    return resolve_init(value).build()


def apply_init(
    model: nn.Module,
    init: str | Mapping[str, Any] | InitSpec,
    act: str | Mapping[str, Any] | ActSpec,
    gain: str | float = "matched",
    batch: torch.Tensor | None = None,
) -> dict:
    """Initialize ``model`` in place with ``init``, the gain taken from ``act``.

    ``gain`` is the study's gain mode: ``'matched'`` (numerical, any activation),
    ``'torch'`` (PyTorch's table; an error for activations it lacks) or a number.
    ``batch`` is a data batch, needed by data-dependent initializers such as LSUV.
    Returns the initializer's report (e.g. LSUV's per-layer iterations).
    """
    initializer = resolve_init(init).build()
    gain_value = 1.0
    if initializer.uses_gain:
        override = initializer.gain_override()
        gain_value = override if override is not None else gain_for(resolve_act(act), gain)
    log.debug("init %s with gain %.4f", resolve_init(init).label, gain_value)
    return initializer.apply(model, gain_value, batch)
