"""Activation functions: the registry, specs and every implemented function.

Importing this package registers all activations; use :func:`resolve_act` to turn a
study-file value into an :class:`ActSpec` and ``spec.build(channels)`` for a module.
"""

from actlab.activations import (  # noqa: F401  (registration side effect)
    adaptive,
    fixed,
    formula,
    learnable,
)
from actlab.activations.base import (
    ACTIVATIONS,
    Activation,
    ActProperties,
    ActSpec,
    build_activation,
    example_act,
    resolve_act,
)
from actlab.activations.gains import matched_gain, second_moment, torch_gain

__all__ = [
    "ACTIVATIONS",
    "ActProperties",
    "ActSpec",
    "Activation",
    "build_activation",
    "example_act",
    "matched_gain",
    "resolve_act",
    "second_moment",
    "torch_gain",
]
