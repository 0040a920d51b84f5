"""Weight initializers: the registry, specs and :func:`apply_init`."""

from actlab.inits import fixup, lsuv, standard  # noqa: F401  (registration side effect)
from actlab.inits.base import (
    INITS,
    Initializer,
    InitSpec,
    apply_init,
    build_init,
    resolve_init,
)

__all__ = ["INITS", "InitSpec", "Initializer", "apply_init", "build_init", "resolve_init"]
