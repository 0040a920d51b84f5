"""actlab: comparative studies of activation functions and weight initializers in CNNs."""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy, so that `import actlab` (the CLI's --help, the version) does not load torch.
    if name == "open_store":
        from actlab.study.store import open_store

        return open_store
    raise AttributeError(f"module 'actlab' has no attribute {name!r}")
