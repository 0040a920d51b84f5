"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import TINY_STUDY


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_study_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_STUDY.format(name="tiny", epochs=2))
    return path
