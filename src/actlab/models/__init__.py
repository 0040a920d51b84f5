"""Model zoo: every architecture takes the activation as an input; see :func:`build_model`."""

from actlab.models import (  # noqa: F401  (registration side effect)
    classic,
    densenet,
    fixup,
    googlenet,
    mobilenet,
    resnet,
    small,
)
from actlab.models.base import (
    MODELS,
    ActivationSwapError,
    activation_sites,
    build_model,
    count_parameters,
    model_misfit,
    model_options,
    verify_activations,
)

__all__ = [
    "MODELS",
    "ActivationSwapError",
    "activation_sites",
    "build_model",
    "count_parameters",
    "model_misfit",
    "model_options",
    "verify_activations",
]
