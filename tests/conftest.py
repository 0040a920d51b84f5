"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from helpers import TINY_STUDY


@pytest.fixture(autouse=True, scope="session")
def _offline_and_private_cache(tmp_path_factory) -> None:
    """No test touches the network or the user's cache: downloads go to a closed local
    port (a real, immediate connection refusal) and decoded arrays to a temp dir."""
    previous = {key: os.environ.get(key) for key in ("ACTLAB_MIRROR", "ACTLAB_CACHE")}
    os.environ["ACTLAB_MIRROR"] = "http://127.0.0.1:9"
    os.environ["ACTLAB_CACHE"] = str(tmp_path_factory.mktemp("actlab-cache"))
    yield
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    """Each test starts from seed 0 and leaves torch's thread count as it found it (an
    in-process `actlab run --threads 1` would otherwise slow every later test)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_study_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_STUDY.format(name="tiny", epochs=2))
    return path
