"""Where actlab keeps files it did not get from the user (no torch: the CLI's fast
commands use it)."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_root() -> Path:
    """``$ACTLAB_DATA`` if set, else ``~/.cache/actlab/data``."""
    env = os.environ.get("ACTLAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "actlab" / "data"


def cache_root() -> Path:
    """Where derived files are cached (decoded datasets, the component catalog, measured
    activation costs): ``$ACTLAB_CACHE`` or ``~/.cache/actlab/cache``."""
    env = os.environ.get("ACTLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "actlab" / "cache"
