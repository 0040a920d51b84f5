"""actlab: comparative studies of activation functions and weight initializers in CNNs.

The public API for a user's own components (docs/extending.md) is imported from here:
``actlab.register_activation``, ``register_init``, ``register_model``,
``register_dataset``, and the base classes ``Activation``, ``ActProperties``,
``Initializer`` and ``ImageDataset``. They load lazily, so that ``import actlab`` (the
CLI's --help, the version) does not load torch.
"""

from typing import Any

__version__ = "0.1.0"

#: Public name -> "module:attribute" (loaded on first use).
_PUBLIC = {
    "open_store": "actlab.study.store:open_store",
    "register_activation": "actlab.activations.base:register_activation",
    "Activation": "actlab.activations.base:Activation",
    "ActProperties": "actlab.activations.base:ActProperties",
    "register_init": "actlab.inits.base:register_init",
    "Initializer": "actlab.inits.base:Initializer",
    "register_model": "actlab.models.base:register_model",
    "register_dataset": "actlab.data.base:register_dataset",
    "ImageDataset": "actlab.data.base:ImageDataset",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        module, attribute = _PUBLIC[name].split(":")
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'actlab' has no attribute {name!r}")
