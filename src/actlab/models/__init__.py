"""Model zoo: every architecture takes the activation as an input; see :func:`build_model`."""

from actlab.models import fixup, small  # noqa: F401  (registration side effect)
from actlab.models.base import (
    MODELS,
    ActivationSwapError,
    activation_sites,
    build_model,
    count_parameters,
    verify_activations,
)

__all__ = [
    "MODELS",
    "ActivationSwapError",
    "activation_sites",
    "build_model",
    "count_parameters",
    "verify_activations",
]
